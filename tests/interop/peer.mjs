#!/usr/bin/env node
// A real Yjs peer (yjs + y-websocket, pinned in package.json) for crdtedge's interop tests.
//
//   node peer.mjs '<json config>'
//
// The config is one JSON object: { mode, url, room, token?, timeout? (ms, default 10000), ... }.
// Output: one JSON object per line on stdout; the last one is {"event": "result", ...} on
// success (exit 0), {"event": "error", ...} (exit 1) or {"event": "timeout", ...} (exit 3).
// stdin is a control channel for long-running modes: a line "go" starts the online phase of
// "converge", and closing stdin ends "awareness". Every mode exits on its own after `timeout`
// ms, so a hang never blocks CI.
//
// Modes:
//   write           connect, wait for sync, apply {text (appended), map} in one transaction,
//                   then wait until a second, independent provider sees the edits through the
//                   server (proof the relay has them); print both states.
//   read            connect, wait for sync (print "synced"), optionally wait until `waitText` is
//                   the text; print.
//   converge        apply `offline` edits before connecting, sync, print "ready", wait for
//                   "go" on stdin, apply `online` edits, wait until every string of
//                   `expectMarkers` is in the text and every `expectKeys` key is in the map.
//   awareness       set local awareness `state`, connect, print "ready" once synced, then one
//                   "awareness" line per remote change, until stdin closes (graceful destroy).
//   late-joiner     connect and report how long until the remote awareness states of all
//                   `expectClients` are present (seen: false after `wait` ms).
//   readonly-write  connect (with a read-only token), sync, apply {text, map}, print "wrote",
//                   then wait until the text contains `expectText` (written by someone else).

import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import WebSocket from 'ws'
import { equalityDeep } from 'lib0/function'
import { performance } from 'node:perf_hooks'

const started = performance.now()
const config = JSON.parse(process.argv[2] ?? '{}')
const timeoutMs = config.timeout ?? 10000
let phase = 'start'
const closes = [] // server-side closes seen by any provider: { code, reason }
const stdinLines = []
let stdinEnded = false

const replacer = (_key, value) => (typeof value === 'bigint' ? { $bigint: value.toString() } : value)

function emit (obj) {
  process.stdout.write(JSON.stringify(obj, replacer) + '\n')
}

function finish (obj, code = 0) {
  process.stdout.write(JSON.stringify(obj, replacer) + '\n', () => process.exit(code))
}

const deadline = setTimeout(() => {
  finish({ event: 'timeout', phase, ms: Math.round(performance.now() - started), closes }, 3)
}, timeoutMs)

process.on('uncaughtException', (err) => {
  clearTimeout(deadline)
  finish({ event: 'error', phase, message: String(err && err.stack ? err.stack : err) }, 1)
})

process.stdin.setEncoding('utf8')
let stdinBuffer = ''
process.stdin.on('data', (chunk) => {
  stdinBuffer += chunk
  let newline
  while ((newline = stdinBuffer.indexOf('\n')) >= 0) {
    stdinLines.push(stdinBuffer.slice(0, newline).trim())
    stdinBuffer = stdinBuffer.slice(newline + 1)
  }
})
process.stdin.on('end', () => { stdinEnded = true })
process.stdin.on('error', () => { stdinEnded = true })

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

async function until (predicate, label, pollMs = 5) {
  phase = label
  while (!predicate()) await sleep(pollMs)
}

function connect (doc, options = {}) {
  const params = config.token ? { token: config.token } : {}
  const provider = new WebsocketProvider(config.url, config.room, doc, {
    WebSocketPolyfill: WebSocket,
    disableBc: true,
    params,
    maxBackoffTime: 500,
    ...options
  })
  provider.on('connection-close', (event) => {
    if (event) closes.push({ code: event.code, reason: String(event.reason ?? '') })
  })
  return provider
}

function state (doc) {
  return {
    text: doc.getText('text').toString(),
    map: doc.getMap('map').toJSON()
  }
}

function applyEdits (doc, edits) {
  if (!edits) return
  doc.transact(() => {
    const text = doc.getText('text')
    if (edits.text !== undefined) {
      text.insert(edits.insertAt === undefined ? text.length : edits.insertAt, edits.text)
    }
    for (const [key, value] of Object.entries(edits.map ?? {})) doc.getMap('map').set(key, value)
  })
}

function hasEdits (doc, edits) {
  const { text, map } = state(doc)
  if (edits.text !== undefined && !text.includes(edits.text)) return false
  return Object.entries(edits.map ?? {}).every(([key, value]) => equalityDeep(map[key], value))
}

function remoteStates (provider) {
  const states = {}
  for (const [id, value] of provider.awareness.getStates()) {
    if (id !== provider.doc.clientID) states[id] = value
  }
  return states
}

async function done (providers, result) {
  for (const provider of providers) provider.destroy()
  clearTimeout(deadline)
  finish({ event: 'result', ms: Math.round(performance.now() - started), closes, ...result })
}

const modes = {
  async write () {
    const doc = new Y.Doc()
    const provider = connect(doc)
    await until(() => provider.synced, 'sync')
    applyEdits(doc, config)
    const echo = new Y.Doc()
    const checker = connect(echo)
    await until(() => checker.synced && hasEdits(echo, config), 'echo')
    await done([provider, checker], {
      clientID: doc.clientID,
      ...state(doc),
      echo: state(echo)
    })
  },

  async read () {
    const doc = new Y.Doc()
    const provider = connect(doc)
    await until(() => provider.synced, 'sync')
    const syncedState = state(doc)
    emit({ event: 'synced', ...syncedState })
    if (config.waitText !== undefined) {
      await until(() => doc.getText('text').toString() === config.waitText, 'waitText')
    }
    await done([provider], { ...state(doc), synced: syncedState })
  },

  async converge () {
    const doc = new Y.Doc()
    applyEdits(doc, config.offline)
    const provider = connect(doc)
    await until(() => provider.synced, 'sync')
    emit({ event: 'ready', clientID: doc.clientID, ...state(doc) })
    await until(() => stdinLines.includes('go') || stdinEnded, 'go')
    applyEdits(doc, config.online)
    await until(() => {
      const { text, map } = state(doc)
      return (config.expectMarkers ?? []).every((marker) => text.includes(marker)) &&
        (config.expectKeys ?? []).every((key) => key in map)
    }, 'converge')
    await sleep(config.settle ?? 200)
    await done([provider], { clientID: doc.clientID, ...state(doc) })
  },

  async awareness () {
    const doc = new Y.Doc()
    const provider = connect(doc, { connect: false })
    provider.awareness.setLocalState(config.state ?? { name: 'node' })
    provider.awareness.on('change', ({ added, updated, removed }) => {
      emit({
        event: 'awareness',
        ms: Math.round(performance.now() - started),
        added,
        updated,
        removed,
        states: remoteStates(provider)
      })
    })
    provider.connect()
    await until(() => provider.synced, 'sync')
    emit({ event: 'ready', clientID: doc.clientID, states: remoteStates(provider) })
    await until(() => stdinEnded, 'running', 20)
    await done([provider], { clientID: doc.clientID, states: remoteStates(provider) })
  },

  async 'late-joiner' () {
    const doc = new Y.Doc()
    const provider = connect(doc)
    let openedAt = null
    provider.on('status', ({ status }) => {
      if (status === 'connected' && openedAt === null) openedAt = performance.now()
    })
    const expected = (config.expectClients ?? []).map(Number)
    const seesAll = () => {
      const states = provider.awareness.getStates()
      return expected.every((id) => states.has(id) && states.get(id) !== null)
    }
    const waitMs = config.wait ?? 5000
    const joinedAt = performance.now()
    phase = 'awareness'
    while (!seesAll() && performance.now() - joinedAt < waitMs) await sleep(2)
    const seenAt = performance.now()
    const seen = seesAll()
    await done([provider], {
      clientID: doc.clientID,
      seen,
      msFromOpen: openedAt === null ? null : seenAt - openedAt,
      msFromStart: seenAt - joinedAt,
      synced: provider.synced,
      states: remoteStates(provider)
    })
  },

  async 'readonly-write' () {
    const doc = new Y.Doc()
    const provider = connect(doc)
    await until(() => provider.synced, 'sync')
    const before = state(doc)
    applyEdits(doc, config)
    emit({ event: 'wrote', clientID: doc.clientID, before, local: state(doc) })
    if (config.expectText !== undefined) {
      await until(() => doc.getText('text').toString().includes(config.expectText), 'expectText')
    }
    await done([provider], {
      clientID: doc.clientID,
      before,
      ...state(doc),
      connected: provider.wsconnected
    })
  }
}

const run = modes[config.mode]
if (!run) {
  clearTimeout(deadline)
  finish({ event: 'error', message: `unknown mode ${JSON.stringify(config.mode)}` }, 1)
} else {
  run().catch((err) => {
    clearTimeout(deadline)
    finish({ event: 'error', phase, message: String(err && err.stack ? err.stack : err) }, 1)
  })
}
