// A real client nobody on this project wrote: @jupyterlab/services 7 in node, used as VS Code's
// Jupyter extension uses it (makeSettings with a token, SessionManager.startNew with a -jvsc-
// path, changeKernel, interrupt, restart, its own reconnect when the socket drops).
// Usage: node services_client.cjs BASE_URL KERNEL_NAME MODE   (token in env CONFORMANCE_TOKEN)
// MODE "api": the session flow; "cut": prints CUT_NOW while a cell runs, waits for the socket
// to drop and come back (the test cuts and restores the link), then reports what arrived.
// Prints one JSON line with what it saw.
'use strict';
const { ServerConnection, KernelManager, SessionManager } = require('@jupyterlab/services');
const WebSocket = require('ws');

const [baseUrl, kernelName, mode] = process.argv.slice(2);
const settings = ServerConnection.makeSettings({
  baseUrl,
  wsUrl: baseUrl.replace(/^http/, 'ws'),
  token: process.env.CONFORMANCE_TOKEN,
  appendToken: true,
  WebSocket,
  init: { cache: 'no-store', credentials: 'same-origin' }
});

function sleep(ms) {
  return new Promise(resolve => setTimeout(resolve, ms));
}

async function run(kernel, code) {
  const iopub = [];
  const future = kernel.requestExecute({ code, stop_on_error: true });
  future.onIOPub = msg => {
    const t = msg.header.msg_type;
    iopub.push(t === 'status' ? `status:${msg.content.execution_state}` : t);
    if (t === 'stream') iopub.push(`text:${msg.content.text}`);
  };
  const reply = await future.done;
  return { iopub, status: reply.content.status, count: reply.content.execution_count,
    ename: reply.content.ename || null };
}

async function api() {
  const kernelManager = new KernelManager({ serverSettings: settings });
  const sessions = new SessionManager({ kernelManager, serverSettings: settings });
  await sessions.ready;
  const id = Math.random().toString(16).slice(2);
  const session = await sessions.startNew({
    path: `conformance-${id}-jvsc-${id}.ipynb`,
    name: 'conformance.ipynb',
    type: 'notebook',
    kernel: { name: kernelName }
  });
  const out = {};
  const info = await session.kernel.info;
  out.info = { status: info.status, language: info.language_info.name };
  out.first = await run(session.kernel, "print('hello')");
  const before = session.kernel.id;
  await session.changeKernel({ name: kernelName });
  out.changed = session.kernel.id !== before;
  out.afterChange = await run(session.kernel, '40 + 2');
  const slow = run(session.kernel, 'import time\ntime.sleep(30)');
  await sleep(1000);
  await session.kernel.interrupt();
  out.interrupted = await slow;
  await session.kernel.restart();
  out.afterRestart = await run(session.kernel, "print('again')");
  await session.shutdown();
  sessions.dispose();
  return out;
}

async function cut() {
  const kernelManager = new KernelManager({ serverSettings: settings });
  const kernel = await kernelManager.startNew({ name: kernelName });
  await kernel.info;
  const statuses = [];
  kernel.connectionStatusChanged.connect((_, s) => statuses.push(s));
  const pending = run(kernel, "import time\nprint('a', flush=True)\ntime.sleep(3)\nprint('b')");
  await sleep(1000);
  console.log('CUT_NOW');
  const result = await pending;
  const out = { result, statuses: statuses.slice(), kernelId: kernel.id };
  await kernel.shutdown();
  kernelManager.dispose();
  return out;
}

(mode === 'cut' ? cut() : api())
  .then(out => {
    console.log(JSON.stringify(out));
    process.exit(0);
  })
  .catch(err => {
    const cause = err && err.cause ? ` (cause: ${err.cause})` : '';
    console.log(JSON.stringify({ error: String(err && err.stack ? err.stack : err) + cause }));
    process.exit(1);
  });
