// Headless Firefox's fetch() against h2lab's /bytes/N and /echo, over TLS
// only (browsers do not speak h2c), driven through WebDriver BiDi.
//
// Usage: node firefox_fetch.js FIREFOX PROFILE_DIR URL...   (https:// URLs)
//
// Firefox listens for BiDi on a WebSocket (--remote-debugging-port 0: a
// free port, announced on stderr as "WebDriver BiDi listening on ws://…").
// The WebSocket client is the few lines below (RFC 6455, text frames only):
// Node 20 has one only behind --experimental-websocket, Debian 12's Node 18
// none. For each URL: navigate to it (Hello World), then evaluate
// page_check.js's inPage() there (every octet of every fetch, h2 through
// Resource Timing). acceptInsecureCerts takes the self-signed certificate.
// Prints "PASS URL what" or "FAIL URL what: why" per check; exits 1 on any
// FAIL. Firefox is always killed on exit.
'use strict';
const {spawn} = require('child_process');
const crypto = require('crypto');
const fs = require('fs');
const http = require('http');
const path = require('path');
const {inPage} = require('./page_check.js');

const [firefoxPath, profileDir, ...urls] = process.argv.slice(2);
const sizes = (name, fallback) =>
  (process.env[name] !== undefined ? process.env[name] : fallback).split(/\s+/).filter(Boolean).map(Number);
const BYTES = sizes('H2LAB_BYTES', '0 1 36 37 16383 16384 16385 40000 65535 65536 100003 1048589');
const ECHO = sizes('H2LAB_ECHO', '1 16385 1048576');

// A fresh profile that stays on loopback: no HTTP/3 (QUIC), no updates,
// telemetry, safe-browsing or captive-portal probes. (The remote agent adds
// its own recommended preferences on top.)
fs.mkdirSync(profileDir, {recursive: true});
fs.writeFileSync(path.join(profileDir, 'user.js'), [
  ['network.http.http3.enable', false],
  ['app.update.disabledForTesting', true],
  ['browser.safebrowsing.malware.enabled', false],
  ['browser.safebrowsing.phishing.enabled', false],
  ['datareporting.policy.dataSubmissionEnabled', false],
  ['toolkit.telemetry.enabled', false],
  ['network.captive-portal-service.enabled', false],
  ['network.connectivity-service.enabled', false],
  ['network.http.speculative-parallel-limit', 0],
].map(([k, v]) => `user_pref(${JSON.stringify(k)}, ${JSON.stringify(v)});\n`).join(''));

const firefox = spawn(firefoxPath, [
  '--headless', '--no-remote', '--profile', profileDir, '--remote-debugging-port', '0', 'about:blank',
], {stdio: ['ignore', 'ignore', 'pipe'], env: {...process.env, HOME: profileDir, MOZ_CRASHREPORTER_DISABLE: '1'}});
let firefoxLog = '';
const kill = () => { try { firefox.kill('SIGKILL'); } catch (e) { /* gone already */ } };
process.on('exit', kill);
const deadline = setTimeout(() => {
  console.log(`FAIL ${urls.join(' ')} firefox: no verdict within 150 s; its stderr: ${firefoxLog.slice(-3000)}`);
  process.exit(1);
}, 150000);
const listening = new Promise((resolve, reject) => {
  firefox.stderr.on('data', (d) => {
    firefoxLog = (firefoxLog + d).slice(-20000);
    const m = /WebDriver BiDi listening on (ws:\/\/[^\s]+)/.exec(firefoxLog);
    if (m) resolve(m[1]);
  });
  firefox.on('exit', (code, signal) => reject(new Error(`firefox exited (${code ?? signal}): ${firefoxLog.slice(-3000)}`)));
});

// RFC 6455, client side: masked text frames out; text, continuation, ping
// and close frames in.
function websocket(url, onText) {
  return new Promise((resolve, reject) => {
    const req = http.request(url.replace(/^ws:/, 'http:'), {headers: {
      'Connection': 'Upgrade', 'Upgrade': 'websocket', 'Sec-WebSocket-Version': '13',
      'Sec-WebSocket-Key': crypto.randomBytes(16).toString('base64')}});
    req.on('error', reject);
    req.on('response', (res) => reject(new Error(`no upgrade: HTTP ${res.statusCode}`)));
    req.on('upgrade', (res, socket, head) => {
      const frame = (opcode, payload) => {
        const mask = crypto.randomBytes(4);
        const n = payload.length;
        const header = n < 126 ? Buffer.from([0x80 | opcode, 0x80 | n])
          : n < 65536 ? Buffer.from([0x80 | opcode, 0x80 | 126, n >> 8, n & 255])
            : Buffer.concat([Buffer.from([0x80 | opcode, 0x80 | 127]), (() => {
              const b = Buffer.alloc(8); b.writeBigUInt64BE(BigInt(n)); return b;
            })()]);
        const masked = Buffer.alloc(n);
        for (let i = 0; i < n; i++) masked[i] = payload[i] ^ mask[i & 3];
        socket.write(Buffer.concat([header, mask, masked]));
      };
      let buffer = head;
      let message = [];
      socket.on('data', (d) => {
        buffer = Buffer.concat([buffer, d]);
        for (;;) {
          if (buffer.length < 2) return;
          const fin = buffer[0] & 0x80;
          const opcode = buffer[0] & 0x0f;
          let n = buffer[1] & 0x7f;
          let at = 2;
          if (n === 126) { if (buffer.length < 4) return; n = buffer.readUInt16BE(2); at = 4; }
          if (n === 127) { if (buffer.length < 10) return; n = Number(buffer.readBigUInt64BE(2)); at = 10; }
          if (buffer.length < at + n) return;
          const payload = buffer.subarray(at, at + n);
          buffer = buffer.subarray(at + n);
          if (opcode === 9) frame(10, payload);  // ping → pong
          else if (opcode === 8) socket.end();
          else if (opcode === 1 || opcode === 0) {
            message.push(payload);
            if (fin) { onText(Buffer.concat(message).toString()); message = []; }
          }
        }
      });
      resolve({send: (text) => frame(1, Buffer.from(text)), close: () => socket.destroy()});
    });
    req.end();
  });
}

(async () => {
  let failed = false;
  const report = (url, what, why) => {
    console.log(why ? `FAIL ${url} ${what}: ${why}` : `PASS ${url} ${what}`);
    failed = failed || Boolean(why);
  };
  let ws;
  try {
    const endpoint = await listening;
    let nextId = 1;
    const pending = new Map();
    ws = await websocket(`${endpoint}/session`, (text) => {
      const m = JSON.parse(text);
      if (m.id === undefined || !pending.has(m.id)) return;  // events
      const {resolve, reject} = pending.get(m.id);
      pending.delete(m.id);
      if (m.type === 'error') reject(new Error(`${m.error}: ${m.message}`));
      else resolve(m.result);
    });
    const send = (method, params = {}) => {
      const id = nextId++;
      ws.send(JSON.stringify({id, method, params}));
      return new Promise((resolve, reject) => pending.set(id, {resolve, reject}));
    };
    await send('session.new', {capabilities: {alwaysMatch: {acceptInsecureCerts: true}}});
    const tree = await send('browsingContext.getTree', {});
    const context = tree.contexts[0].context;
    for (const url of urls) {
      await send('browsingContext.navigate', {context, url, wait: 'complete'});
      const r = await send('script.evaluate', {
        expression: `(${inPage.toString()})(${JSON.stringify(BYTES)}, ${JSON.stringify(ECHO)})` +
          '.then((v) => JSON.stringify(v))',
        target: {context}, awaitPromise: true,
      });
      if (r.type === 'exception') {
        report(url, 'page script', JSON.stringify(r.exceptionDetails).slice(0, 2000));
      } else {
        for (const [what, why] of JSON.parse(r.result.value)) report(url, what, why);
      }
      // Leave the server: the blocking dispatcher serves one connection at a time.
      await send('browsingContext.navigate', {context, url: 'about:blank', wait: 'complete'});
    }
    await send('browser.close').catch(() => {});
  } catch (e) {
    report(urls.join(' '), 'firefox', e.message);
  }
  clearTimeout(deadline);
  if (ws) ws.close();
  kill();
  process.exit(failed ? 1 : 0);
})();
