// What a browser runs in a page of the server under test (chromium_fetch.js
// and firefox_fetch.js inject it with inPage.toString()): every fetch, every
// octet checked in JavaScript, and h2 checked through Resource Timing.
'use strict';

// Runs in the page: every fetch, every octet; returns [[what, why], ...].
async function inPage(bytesSizes, echoSizes) {
  const pattern = new TextEncoder().encode('abcdefghijklmnopqrstuvwxyz0123456789\n');
  let seed = 0x2545f491;
  const randomBytes = (n) => {  // xorshift32: the same octets on every run
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      seed ^= seed << 13; seed >>>= 0;
      seed ^= seed >>> 17;
      seed ^= seed << 5; seed >>>= 0;
      out[i] = seed & 0xff;
    }
    return out;
  };
  const check = async (path, init, want) => {
    const response = await fetch(path, {cache: 'no-store', ...init});
    const got = new Uint8Array(await response.arrayBuffer());
    if (response.status !== 200) return `status ${response.status}`;
    const entries = performance.getEntriesByName(response.url);
    const protocol = entries.length ? entries[entries.length - 1].nextHopProtocol : '(no timing entry)';
    if (protocol !== 'h2') return `went over ${protocol}, not h2`;
    let i = 0;
    while (i < got.length && i < want.length && got[i] === want[i]) i++;
    if (i === got.length && i === want.length) return '';
    return `${got.length} octets (want ${want.length}), first difference at octet ${i}`;
  };
  const verdicts = [];
  const page = performance.getEntriesByType('navigation')[0].nextHopProtocol;
  verdicts.push(['page load over h2', page === 'h2' ? '' : `the page came over ${page}`]);
  verdicts.push(['page body', document.body.innerText.trim() === 'Hello World' ? '' : 'not Hello World']);
  for (const n of bytesSizes) {
    const want = new Uint8Array(n);
    for (let i = 0; i < n; i++) want[i] = pattern[i % pattern.length];
    verdicts.push([`fetch GET /bytes/${n}`, await check(`/bytes/${n}`, {}, want)]);
  }
  for (const n of echoSizes) {
    const body = randomBytes(n);
    verdicts.push([`fetch POST /echo (${n} octets)`,
      await check('/echo', {method: 'POST', body, headers: {'content-type': 'application/octet-stream'}}, body)]);
  }
  return verdicts;
}

module.exports = {inPage};
