#!/usr/bin/env node
// crdtedge's replicated state types, read and written with plain `yjs` (pinned in
// package.json) by following docs/types.md only: no crdtedge code. Used by
// tests/test_types_interop.py, and a reference for JS developers.
//
//   echo '<json>' | node types.mjs
//
// Input (stdin): { clientID, update (base64 Yjs update, optional), steps: [{ op, ... }] }.
// Output (stdout): { reads: [one result per read step], update: base64 of the full state }.

import * as Y from 'yjs'
import { readFileSync } from 'node:fs'

// -- the layout header: every crdtedge type map has "type" and "v" ----------------------

const SUPPORTED_VERSION = 1

function checkHeader (map, type) {
  const found = map.get('type')
  if (found !== undefined && found !== type) throw new Error(`map holds a ${found}, not a ${type}`)
  const version = map.get('v')
  if (version !== undefined && version > SUPPORTED_VERSION) {
    throw new Error(`${type} layout version ${version} is newer than this reader`)
  }
}

function stampHeader (map, type) {
  checkHeader(map, type)
  if (!map.has('type')) {
    map.set('type', type)
    map.set('v', SUPPORTED_VERSION)
  }
}

const isClientId = (key) => /^\d+$/.test(key)

// -- Counter: slots "<clientID>" -> { inc, dec }, each written only by its client --------

function counterValue (map) {
  checkHeader(map, 'counter')
  let total = 0
  for (const [key, slot] of map) if (isClientId(key)) total += slot.inc - slot.dec
  return total
}

function count (map, inc, dec) {
  map.doc.transact(() => {
    stampHeader(map, 'counter')
    const key = String(map.doc.clientID)
    const slot = map.get(key) ?? { inc: 0, dec: 0 }
    map.set(key, { inc: slot.inc + inc, dec: slot.dec + dec })
  })
}

// -- Register: slots "<clientID>" -> { wall, counter, value }; greatest (wall, counter, id) wins

function registerWinner (map) {
  checkHeader(map, 'register')
  let best = null
  for (const [key, slot] of map) {
    if (!isClientId(key)) continue
    const entry = { value: slot.value, wall: slot.wall, counter: slot.counter, client: Number(key) }
    if (best === null || compareStamps(entry, best) > 0) best = entry
  }
  return best
}

const compareStamps = (a, b) => (a.wall - b.wall) || (a.counter - b.counter) || (a.client - b.client)

function writeRegister (map, value, now = Date.now()) {
  map.doc.transact(() => {
    stampHeader(map, 'register')
    const best = registerWinner(map) // a hybrid logical clock: never behind what we have seen
    const stamp = (best === null || now > best.wall)
      ? { wall: now, counter: 0 }
      : { wall: best.wall, counter: best.counter + 1 }
    map.set(String(map.doc.clientID), { ...stamp, value })
  })
}

// -- Set: tags "<anything unique>" -> value; members are the distinct values --------------

const canonical = (v) => Array.isArray(v)
  ? `[${v.map(canonical).join(',')}]`
  : (v !== null && typeof v === 'object')
      ? `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonical(v[k])}`).join(',')}}`
      : JSON.stringify(v)

function setValues (map) {
  checkHeader(map, 'set')
  const members = new Map()
  for (const [key, value] of map) if (key !== 'type' && key !== 'v') members.set(canonical(value), value)
  return [...members.values()]
}

function deleteTags (map, value) {
  const identity = canonical(value)
  for (const [key, stored] of [...map]) {
    if (key !== 'type' && key !== 'v' && canonical(stored) === identity) map.delete(key)
  }
}

function addToSet (map, value) {
  map.doc.transact(() => {
    stampHeader(map, 'set')
    deleteTags(map, value) // a fresh tag replaces the ones seen here
    map.set(`${map.doc.clientID}:${Y.getState(map.doc.store, map.doc.clientID)}`, value)
  })
}

function removeFromSet (map, value) {
  map.doc.transact(() => { stampHeader(map, 'set'); deleteTags(map, value) })
}

// -- Series: "r:<writer>:<seq>:<source>" -> { t, v }; "n:<writer>:<source>" -> next seq;
//    "u:<writer>:<roller>:<source>" -> { upto, b: { "<bucket start>": [count, sum, min, max] } }

function parseSeries (map) {
  checkHeader(map, 'series')
  const readings = []
  const best = new Map() // "<writer>:<source>" -> the rollup record reaching furthest
  for (const [key, value] of map) {
    const [kind, a, b, ...rest] = key.split(':')
    if (kind === 'r') {
      readings.push({ writer: Number(a), seq: Number(b), source: rest.join(':'), t: value.t, v: value.v })
    } else if (kind === 'u') {
      const group = `${a}:${rest.join(':')}`
      const known = best.get(group)
      if (!known || value.upto > known.upto || (value.upto === known.upto && Number(b) > known.roller)) {
        best.set(group, { ...value, roller: Number(b), source: rest.join(':') })
      }
    }
  }
  const covered = (r) => (best.get(`${r.writer}:${r.source}`)?.upto ?? 0) > r.seq
  const raw = readings.filter((r) => !covered(r))
  raw.sort((x, y) => (x.t - y.t) || (x.source < y.source ? -1 : x.source > y.source ? 1 : 0) ||
    (x.writer - y.writer) || (x.seq - y.seq))
  return { readings: raw, rollups: [...best.values()], bucket: map.get('bucket') ?? 60000 }
}

function appendReading (map, source, value, t = Date.now()) {
  map.doc.transact(() => {
    stampHeader(map, 'series')
    if (!map.has('bucket')) map.set('bucket', 60000)
    const id = map.doc.clientID
    const seq = map.get(`n:${id}:${source}`) ?? 0
    map.set(`r:${id}:${seq}:${source}`, { t, v: value })
    map.set(`n:${id}:${source}`, seq + 1)
  })
}

// -- the driver ------------------------------------------------------------------------

const input = JSON.parse(readFileSync(0, 'utf8'))
const doc = new Y.Doc()
doc.clientID = input.clientID
if (input.update) Y.applyUpdate(doc, Buffer.from(input.update, 'base64'))

const root = (name) => doc.getMap(name)
const reads = []
for (const step of input.steps) {
  try {
    switch (step.op) {
      case 'readCounter': reads.push(counterValue(root(step.name))); break
      case 'increment': count(root(step.name), step.by, 0); break
      case 'decrement': count(root(step.name), 0, step.by); break
      case 'readRegister': reads.push(registerWinner(root(step.name))); break
      case 'writeRegister': writeRegister(root(step.name), step.value, step.now); break
      case 'readSet': reads.push(setValues(root(step.name))); break
      case 'addToSet': addToSet(root(step.name), step.value); break
      case 'removeFromSet': removeFromSet(root(step.name), step.value); break
      case 'readSeries': reads.push(parseSeries(root(step.name))); break
      case 'appendReading': appendReading(root(step.name), step.source, step.value, step.t); break
      case 'readText': reads.push(doc.getText(step.name).toString()); break
      case 'insertText': doc.getText(step.name).insert(step.index, step.text); break
      case 'readMap': reads.push(root(step.name).toJSON()); break
      case 'incrementIn': count(root(step.name).get(step.key).get(step.field), step.by, 0); break
      case 'setVersion': root(step.name).set('v', step.v); break
      default: throw new Error(`unknown step ${step.op}`)
    }
  } catch (error) {
    reads.push({ error: String(error.message) })
  }
}
const update = Buffer.from(Y.encodeStateAsUpdate(doc)).toString('base64')
process.stdout.write(JSON.stringify({ reads, update }) + '\n')
