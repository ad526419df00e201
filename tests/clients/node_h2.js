// Node's http2 module against h2lab's /bytes/N and /echo.
//
// Usage: node node_h2.js URL...   (http:// is h2c with prior knowledge,
// https:// is h2 over TLS taking any certificate)
//
// For each URL, two sessions: Node's default settings, and a 4099-octet
// initial stream window (odd, so DATA frames split at odd places). Each
// session sends every request at once: GET /bytes/N for each N of
// $H2LAB_BYTES, POST /echo for each size of $H2LAB_ECHO (xorshift octets,
// fixed seed); every octet is checked here. Prints "PASS URL what" or
// "FAIL URL what: why" per check; exits 1 on any FAIL.
'use strict';
const http2 = require('http2');

const PATTERN = Buffer.from('abcdefghijklmnopqrstuvwxyz0123456789\n');
const sizes = (name, fallback) =>
  (process.env[name] !== undefined ? process.env[name] : fallback).split(/\s+/).filter(Boolean).map(Number);
const BYTES = sizes('H2LAB_BYTES', '0 1 36 37 16383 16384 16385 40000 65535 65536 100003 1048589');
const ECHO = sizes('H2LAB_ECHO', '1 16385 1048576');
const SESSIONS = [
  {name: 'default settings', settings: {}},
  {name: '4099-octet stream window', settings: {initialWindowSize: 4099}},
];

function expectedBytes(n) {
  const out = Buffer.alloc(n);
  for (let i = 0; i < n; i++) out[i] = PATTERN[i % PATTERN.length];
  return out;
}

let seed = 0x2545f491;
function randomBytes(n) {  // xorshift32: the same octets on every run
  const out = Buffer.alloc(n);
  for (let i = 0; i < n; i++) {
    seed ^= seed << 13; seed >>>= 0;
    seed ^= seed >>> 17;
    seed ^= seed << 5; seed >>>= 0;
    out[i] = seed & 0xff;
  }
  return out;
}

function mismatch(got, want) {
  if (got.equals(want)) return '';
  let i = 0;
  while (i < got.length && i < want.length && got[i] === want[i]) i++;
  return `${got.length} octets (want ${want.length}), first difference at octet ${i}`;
}

function request(session, method, path, body, want) {
  return new Promise((resolve) => {
    const req = session.request({':method': method, ':path': path}, {endStream: !body});
    let status = 0;
    const chunks = [];
    req.on('response', (headers) => { status = headers[':status']; });
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', () => resolve(status !== 200 ? `status ${status}` : mismatch(Buffer.concat(chunks), want)));
    req.on('error', (e) => resolve(`stream error: ${e.message}`));
    req.setTimeout(60000, () => { req.close(); resolve('no answer within 60 s'); });
    if (body) req.end(body);
  });
}

async function run(url, config) {
  const session = http2.connect(url, {rejectUnauthorized: false, settings: config.settings});
  const failedToConnect = new Promise((resolve) => session.on('error', (e) => resolve(e)));
  const connected = new Promise((resolve) => session.on('connect', resolve));
  const error = await Promise.race([connected.then(() => null), failedToConnect]);
  if (error) return [[`connection (${config.name})`, `${error.message}`]];
  if (url.startsWith('https:') && session.alpnProtocol !== 'h2') {
    session.destroy();
    return [['ALPN', `negotiated ${session.alpnProtocol}`]];
  }
  const checks = BYTES.map((n) => [`GET /bytes/${n}`, 'GET', `/bytes/${n}`, null, expectedBytes(n)]);
  for (const n of ECHO) {
    const body = randomBytes(n);
    checks.push([`POST /echo (${n} octets)`, 'POST', '/echo', body, body]);
  }
  const verdicts = await Promise.all(checks.map(([, method, path, body, want]) =>
    request(session, method, path, body, want)));
  await new Promise((resolve) => session.close(resolve));
  return checks.map(([what], i) => [`${what}, ${config.name}`, verdicts[i]]);
}

(async () => {
  let failed = false;
  for (const url of process.argv.slice(2)) {
    for (const config of SESSIONS) {
      for (const [what, why] of await run(url, config)) {
        console.log(why ? `FAIL ${url} ${what}: ${why}` : `PASS ${url} ${what}`);
        failed = failed || Boolean(why);
      }
    }
  }
  process.exit(failed ? 1 : 0);
})();
