'use strict'
// Real Yjs clients for benchmarks/relay_bench.py: one writer and many readers, all in this one
// Node process (one clock for every timestamp), each a stock y-websocket provider
// (`disableBc: true`, so every update goes through the server under test).
//
//   node benchmarks/relay_clients.cjs '<json config>'
//
// Modules resolve from tests/interop/node_modules (the pinned yjs, y-websocket and ws).
// Output: JSON lines on stdout, the last one {"event": "result", ...} (exit 0), {"event":
// "error"} (exit 1) or {"event": "timeout", "phase": ...} (exit 3). Every mode stops itself
// after `timeoutMs` (counted again from "go" with `handshake`), so a stuck server never hangs
// the benchmark.
//
// Modes (config.mode):
//   burst     `readers` readers and one writer join room `room`. The writer types `updates`
//             characters into a draft copy of its document, one transaction (one update) each,
//             before the clock starts; the burst is those updates sent back to back, one
//             y-websocket update message (one frame) each, on the writer's connection, so the
//             writer's typing cost (see benchmarks/README.md) is left out for every server
//             alike. Reports the time from the first frame until every reader has the whole
//             text, and checks every reader's text equals the writer's.
//   paced     the same clients; the writer types `rate` characters per second for `seconds`,
//             stamping each one's send time; every reader records, for every character, the
//             time it arrived. Reports latency percentiles over all (reader, character) pairs.
//   populate  writes a small document (10 updates of 10 characters) into each of `rooms`,
//             `concurrency` rooms at a time, and waits until a second client sees it through
//             the server; the writer leaves, the second client stays until every room is
//             written, then all leave together.
//   check     connects to each of `rooms` once more and counts the rooms whose text is still
//             the one `populate` wrote.

const path = require('node:path')
const { createRequire } = require('node:module')
const { performance } = require('node:perf_hooks')

const requireInterop = createRequire(path.resolve(__dirname, '..', 'tests', 'interop', 'package.json'))
const Y = requireInterop('yjs')
const { WebsocketProvider } = requireInterop('y-websocket')
const WebSocket = requireInterop('ws')
const encoding = requireInterop('lib0/encoding')
const syncProtocol = requireInterop('y-protocols/sync')

process.setMaxListeners(0) // every provider adds an 'exit' listener
const config = JSON.parse(process.argv[2] || '{}')
const timeoutMs = config.timeoutMs || 60000
const closes = [] // closes this process did not ask for: { code, reason }
let phase = 'start'

function finish (obj, code) {
  process.stdout.write(JSON.stringify(obj) + '\n', () => process.exit(code))
}

// What a mode has done so far, reported when the deadline cuts it short.
let report = () => ({})
let deadline = null
function armDeadline (ms) {
  clearTimeout(deadline)
  deadline = setTimeout(() => {
    finish({ event: 'timeout', phase, closes: closes.slice(0, 20), ...report() }, 3)
  }, ms)
}
armDeadline(timeoutMs)

// With `handshake`, a mode prints {"event": "ready"} once its clients are in place and waits
// for a line "go" on stdin: the driver first waits until the server is idle (the joins set
// off awareness traffic), then the deadline starts again for the measured part.
const stdinLines = []
process.stdin.setEncoding('utf8')
let stdinBuffer = ''
process.stdin.on('data', (chunk) => {
  stdinBuffer += chunk
  for (let nl = stdinBuffer.indexOf('\n'); nl >= 0; nl = stdinBuffer.indexOf('\n')) {
    stdinLines.push(stdinBuffer.slice(0, nl).trim())
    stdinBuffer = stdinBuffer.slice(nl + 1)
  }
})

async function readyGo () {
  if (!config.handshake) return
  process.stdout.write(JSON.stringify({ event: 'ready' }) + '\n')
  await until(() => stdinLines.includes('go'), 'wait-go', 5)
  armDeadline(timeoutMs)
}

process.on('uncaughtException', (err) => {
  clearTimeout(deadline)
  finish({ event: 'error', phase, message: String(err && err.stack ? err.stack : err) }, 1)
})

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

async function until (predicate, label, pollMs = 2) {
  phase = label
  while (!predicate()) await sleep(pollMs)
}

function connect (room, doc) {
  const provider = new WebsocketProvider(config.url, room, doc, {
    WebSocketPolyfill: WebSocket,
    disableBc: true,
    maxBackoffTime: 500
  })
  provider.on('connection-close', (event) => {
    if (provider.shouldConnect && event && closes.length < 1000) closes.push({ code: event.code, reason: String(event.reason || '') })
  })
  return provider
}

// The characters the writer types: deterministic, so every run sends the same bytes.
function charAt (i) {
  return 'abcdefghijklmnopqrstuvwxyz '[(i * 7919) % 27]
}

function percentile (sorted, q) {
  if (sorted.length === 0) return null
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))
  return sorted[rank]
}

function median (values) {
  return percentile([...values].sort((a, b) => a - b), 0.5)
}

// Type `n` characters at the end of a draft copy of `doc`, one transaction each, and encode each transaction's update as the y-websocket message the provider would
// have sent: a sync message (0) holding a sync update (2).
function typeAhead (doc, n) {
  // Its own client id: a server that echoes updates to their sender (@y/websocket-server
  // does) would otherwise make the writer's doc see its own id from afar and change it.
  const draft = new Y.Doc()
  Y.applyUpdate(draft, Y.encodeStateAsUpdate(doc))
  const frames = []
  draft.on('update', (update) => {
    const encoder = encoding.createEncoder()
    encoding.writeVarUint(encoder, 0)
    syncProtocol.writeUpdate(encoder, update)
    frames.push(encoding.toUint8Array(encoder))
  })
  const text = draft.getText('text')
  const t0 = performance.now()
  for (let i = 0; i < n; i++) text.insert(i, charAt(i))
  return { text, frames, typingMs: performance.now() - t0 }
}

// A writer and `count` readers in one room, all synced with the server.
// The writer joins first, alone: pycrdt.websocket 0.16.5 leaves clients that join a room
// while it is still being created waiting forever (until y-websocket gives up after 30 s
// without a message and reconnects).
async function openRoom (room, count) {
  const started = performance.now()
  const writerDoc = new Y.Doc()
  const writer = connect(room, writerDoc)
  await until(() => writer.synced, 'writer-sync')
  const readers = []
  for (let i = 0; i < count; i++) {
    const doc = new Y.Doc()
    readers.push({ doc, text: doc.getText('text'), provider: connect(room, doc), updates: 0 })
  }
  report = () => ({ readers: count, readersSynced: readers.filter((r) => r.provider.synced).length })
  await until(() => readers.every((r) => r.provider.synced), 'sync')
  const connectMs = performance.now() - started
  await sleep(config.settleMs === undefined ? 500 : config.settleMs) // let the awareness burst of the joins pass
  await readyGo()
  for (const reader of readers) reader.doc.on('update', () => { reader.updates++ })
  return { writerDoc, writer, readers, connectMs }
}

function verify (readers, expected) {
  let failures = 0
  let example = null
  for (const reader of readers) {
    const got = reader.text.toString()
    if (got !== expected) {
      failures++
      if (example === null) example = { length: got.length, expectedLength: expected.length, head: got.slice(0, 40) }
    }
  }
  return { failures, example }
}

function closeAll (providers) {
  for (const provider of providers) provider.destroy()
}

const modes = {
  async burst () {
    const n = config.updates
    const { writerDoc, writer, readers, connectMs } = await openRoom(config.room, config.readers)
    let remaining = readers.length
    let lastDone = 0
    const doneAt = new Array(readers.length).fill(null)
    readers.forEach((reader, index) => {
      reader.text.observe(() => {
        if (doneAt[index] === null && reader.text.length >= n) {
          doneAt[index] = performance.now()
          lastDone = doneAt[index]
          remaining--
        }
      })
    })
    const { text, frames, typingMs } = typeAhead(writerDoc, n)
    phase = 'burst'
    const t0 = performance.now()
    report = () => ({
      readers: readers.length,
      readersDone: readers.length - remaining,
      minLength: Math.min(...readers.map((r) => r.text.length)),
      elapsedMs: performance.now() - t0
    })
    for (const frame of frames) writer.ws.send(frame)
    const writerLoopMs = performance.now() - t0
    await until(() => remaining === 0, 'delivery', 1)
    const ms = lastDone - t0
    const expected = text.toString()
    const { failures, example } = verify(readers, expected)
    const doneMs = doneAt.map((t) => t - t0)
    closeAll([writer, ...readers.map((r) => r.provider)])
    return {
      ms,
      writerLoopMs,
      typingMs,
      connectMs,
      firstReaderMs: Math.min(...doneMs),
      medianReaderMs: median(doneMs),
      updatesPerReaderMedian: median(readers.map((r) => r.updates)),
      updatesPerReaderMax: Math.max(...readers.map((r) => r.updates)),
      textLength: expected.length,
      failures,
      example
    }
  },

  async paced () {
    const total = Math.round(config.rate * config.seconds)
    const intervalMs = 1000 / config.rate
    const { writerDoc, writer, readers, connectMs } = await openRoom(config.room, config.readers)
    const sentAt = new Float64Array(total)
    const latencies = new Float64Array(total * readers.length)
    let samples = 0
    readers.forEach((reader) => {
      let seen = 0
      reader.text.observe(() => {
        const now = performance.now()
        const length = Math.min(reader.text.length, total)
        for (; seen < length; seen++) latencies[samples++] = now - sentAt[seen]
      })
    })
    const text = writerDoc.getText('text')
    phase = 'paced'
    const t0 = performance.now()
    let sent = 0
    report = () => {
      const sorted = latencies.slice(0, samples).sort()
      return {
        sent,
        samples,
        expectedSamples: total * readers.length,
        p50Ms: percentile(sorted, 0.5),
        p99Ms: percentile(sorted, 0.99),
        elapsedMs: performance.now() - t0
      }
    }
    await new Promise((resolve) => {
      const tick = () => {
        const due = Math.min(total, Math.floor((performance.now() - t0) / intervalMs) + 1)
        for (; sent < due; sent++) {
          sentAt[sent] = performance.now()
          text.insert(sent, charAt(sent))
        }
        if (sent >= total) resolve()
        else setTimeout(tick, Math.max(0, t0 + sent * intervalMs - performance.now()))
      }
      tick()
    })
    const sendSeconds = (performance.now() - t0) / 1000
    await until(() => readers.every((r) => r.text.length >= total), 'drain', 1)
    const drainMs = performance.now() - t0 - sendSeconds * 1000
    const sorted = latencies.subarray(0, samples).sort()
    let sum = 0
    for (const value of sorted) sum += value
    const { failures, example } = verify(readers, text.toString())
    closeAll([writer, ...readers.map((r) => r.provider)])
    return {
      connectMs,
      updates: total,
      sendSeconds,
      drainMs,
      samples,
      p50Ms: percentile(sorted, 0.5),
      p90Ms: percentile(sorted, 0.9),
      p99Ms: percentile(sorted, 0.99),
      maxMs: sorted[sorted.length - 1],
      meanMs: sum / samples,
      updatesPerReaderMedian: median(readers.map((r) => r.updates)),
      failures,
      example
    }
  },

  async populate () {
    const started = performance.now()
    let failures = 0
    const rooms = [...config.rooms]
    const holders = []
    const worker = async () => {
      for (let room = rooms.shift(); room !== undefined; room = rooms.shift()) {
        const holder = await populateRoom(room)
        if (holder === null) failures++
        else holders.push(holder)
      }
    }
    phase = 'populate'
    report = () => ({ written: holders.length })
    await Promise.all(Array.from({ length: config.concurrency }, worker))
    const ms = performance.now() - started
    // Every room was held open until now, so all of them go idle together.
    closeAll(holders)
    await sleep(300)
    return { ms, rooms: config.rooms.length, failures }
  },

  async check () {
    const started = performance.now()
    let kept = 0
    let empty = 0
    let other = 0
    const rooms = [...config.rooms]
    const worker = async () => {
      for (let room = rooms.shift(); room !== undefined; room = rooms.shift()) {
        const doc = new Y.Doc()
        const provider = connect(room, doc)
        await until(() => provider.synced, 'check', 5)
        await sleep(20) // a server may send its content as updates right after step 2
        const got = doc.getText('text').toString()
        if (got === roomText(room)) kept++
        else if (got === '') empty++
        else other++
        provider.destroy()
      }
    }
    await Promise.all(Array.from({ length: config.concurrency }, worker))
    return { ms: performance.now() - started, rooms: config.rooms.length, kept, empty, other }
  }
}

function roomText (room) {
  let text = ''
  for (let k = 0; k < 10; k++) text += `${room}/${k}`.padEnd(10, '.').slice(0, 10)
  return text
}

async function populateRoom (room) {
  const expected = roomText(room)
  const writerDoc = new Y.Doc()
  const writer = connect(room, writerDoc)
  await until(() => writer.synced, 'populate-sync', 5)
  const text = writerDoc.getText('text')
  for (let k = 0; k < 10; k++) text.insert(text.length, expected.slice(k * 10, k * 10 + 10))
  const checkerDoc = new Y.Doc()
  const checker = connect(room, checkerDoc)
  const checkerText = checkerDoc.getText('text')
  await until(() => checker.synced && checkerText.toString() === expected, 'populate-check', 5)
  writer.destroy()
  return writerDoc.getText('text').toString() === expected ? checker : null
}

const mode = modes[config.mode]
if (mode === undefined) {
  finish({ event: 'error', phase, message: `unknown mode ${config.mode}` }, 1)
} else {
  mode().then((result) => {
    clearTimeout(deadline)
    finish({ event: 'result', closes: closes.slice(0, 20), ...result }, 0)
  }, (err) => {
    clearTimeout(deadline)
    finish({ event: 'error', phase, message: String(err && err.stack ? err.stack : err) }, 1)
  })
}
