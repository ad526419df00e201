// Headless Chromium's fetch() against h2lab's /bytes/N and /echo, over TLS
// only (browsers do not speak h2c), driven through the DevTools protocol.
//
// Usage: node chromium_fetch.js CHROMIUM PROFILE_DIR URL...   (https:// URLs)
//
// The protocol runs over --remote-debugging-pipe (JSON messages ending in
// NUL on fds 3 and 4) rather than a WebSocket on --remote-debugging-port: no
// port to discover, nothing else on loopback can attach, and it needs no
// WebSocket client (Node 20 has one only behind --experimental-websocket;
// Debian 12's own Node 18 has none). For each URL: navigate to it (Hello
// World), then evaluate in the page a script that fetches /bytes/N for each
// N of $H2LAB_BYTES and POSTs /echo for each size of $H2LAB_ECHO (xorshift
// octets, fixed seed), checks every octet in JavaScript, and checks that
// the page and every fetch went over h2 (Resource Timing's nextHopProtocol).
// Prints "PASS URL what" or "FAIL URL what: why" per check; exits 1 on any
// FAIL. Chromium is always killed on exit.
'use strict';
const {spawn} = require('child_process');

const [chromiumPath, profileDir, ...urls] = process.argv.slice(2);
const sizes = (name, fallback) =>
  (process.env[name] !== undefined ? process.env[name] : fallback).split(/\s+/).filter(Boolean).map(Number);
const BYTES = sizes('H2LAB_BYTES', '0 1 36 37 16383 16384 16385 40000 65535 65536 100003 1048589');
const ECHO = sizes('H2LAB_ECHO', '1 16385 1048576');

const chromium = spawn(chromiumPath, [
  '--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--disable-dev-shm-usage', '--disable-extensions', '--no-default-browser-check',
  '--ignore-certificate-errors', `--user-data-dir=${profileDir}`, '--remote-debugging-pipe',
  'about:blank',
], {stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'], env: {...process.env, HOME: profileDir}});
let chromiumLog = '';
chromium.stderr.on('data', (d) => { chromiumLog = (chromiumLog + d).slice(-4000); });
const kill = () => { try { chromium.kill('SIGKILL'); } catch (e) { /* gone already */ } };
process.on('exit', kill);
const deadline = setTimeout(() => {
  console.log(`FAIL ${urls.join(' ')} chromium: no verdict within 120 s; its stderr: ${chromiumLog}`);
  process.exit(1);
}, 120000);

// The DevTools protocol over the pipe.
let nextId = 1;
const pending = new Map();
const listeners = [];
let inbox = '';
chromium.stdio[4].on('data', (d) => {
  inbox += d.toString();
  let end;
  while ((end = inbox.indexOf('\0')) >= 0) {
    const message = JSON.parse(inbox.slice(0, end));
    inbox = inbox.slice(end + 1);
    if (message.id !== undefined && pending.has(message.id)) {
      const {resolve, reject} = pending.get(message.id);
      pending.delete(message.id);
      if (message.error) reject(new Error(JSON.stringify(message.error)));
      else resolve(message.result);
    } else {
      for (const l of listeners.slice()) l(message);
    }
  }
});
chromium.on('exit', (code, signal) => {
  for (const {reject} of pending.values()) reject(new Error(`chromium exited (${code ?? signal}): ${chromiumLog}`));
  pending.clear();
});
function send(method, params = {}, sessionId = undefined) {
  const id = nextId++;
  chromium.stdio[3].write(JSON.stringify({id, method, params, sessionId}) + '\0');
  return new Promise((resolve, reject) => pending.set(id, {resolve, reject}));
}
function event(method, sessionId) {
  return new Promise((resolve) => {
    const l = (m) => {
      if (m.method === method && m.sessionId === sessionId) {
        listeners.splice(listeners.indexOf(l), 1);
        resolve(m.params);
      }
    };
    listeners.push(l);
  });
}

const {inPage} = require('./page_check.js');

(async () => {
  let failed = false;
  const report = (url, what, why) => {
    console.log(why ? `FAIL ${url} ${what}: ${why}` : `PASS ${url} ${what}`);
    failed = failed || Boolean(why);
  };
  try {
    for (const url of urls) {
      const {targetId} = await send('Target.createTarget', {url: 'about:blank'});
      const {sessionId} = await send('Target.attachToTarget', {targetId, flatten: true});
      await send('Page.enable', {}, sessionId);
      const loaded = event('Page.loadEventFired', sessionId);
      const nav = await send('Page.navigate', {url}, sessionId);
      if (nav.errorText) {
        report(url, 'navigation', nav.errorText);
        continue;
      }
      await loaded;
      const result = await send('Runtime.evaluate', {
        expression: `(${inPage.toString()})(${JSON.stringify(BYTES)}, ${JSON.stringify(ECHO)})`,
        awaitPromise: true, returnByValue: true,
      }, sessionId);
      if (result.exceptionDetails) {
        report(url, 'page script', JSON.stringify(result.exceptionDetails).slice(0, 2000));
      } else {
        for (const [what, why] of result.result.value) report(url, what, why);
      }
      // Closing the tab leaves the connection in Chromium's pool; the
      // blocking dispatcher would wait on it, so every server gets its own
      // tab and the browser goes at the end.
      await send('Target.closeTarget', {targetId});
    }
    await send('Browser.close').catch(() => {});
  } catch (e) {
    report(urls.join(' '), 'chromium', e.message);
  }
  clearTimeout(deadline);
  kill();
  process.exit(failed ? 1 : 0);
})();
