#!/usr/bin/env node
// Offline validation of rendered Kubernetes objects.
//
// Reads a JSON array of objects on stdin and, for each, runs the
// kubernetes-models class's .validate() (types, enums, required fields) and a
// strict unknown-field check. Prints one line per error,
// `<kind>/<name>: <path>: <message>`, and exits 1 if there was any.
//
// Why the strict check works this way: kubernetes-models 4.4+ ships no JSON
// schemas, only validators that ajv compiled to code (_schemas/*.js, each
// require()ing the ones its $refs point to), and those accept any extra
// property. So the object is handed to the validator behind a Proxy that
// records which keys the validator reads: a compiled validator reads every
// property its schema defines (`data.foo`, even when absent) and enumerates
// the keys of additionalProperties maps (labels, data). A key that was never
// read, in an object whose other keys were, is not in the schema. An object
// the validator never looked into (a schema with no properties, e.g.
// RawExtension) is a leaf and is not checked.
'use strict';

const PACKAGES = ['kubernetes-models', '@kubernetes-models/prometheus-operator'];

// The model class for apiVersion/kind, or null. Only top-level kinds carry
// static apiVersion/kind, so nested types (e.g. "PodSpec") are not found.
function modelClass(apiVersion, kind) {
  if (!/^([a-z0-9.-]+\/)?v[0-9a-z]+$/.test(apiVersion) || !/^[A-Z][A-Za-z0-9]*$/.test(kind)) return null;
  for (const pkg of PACKAGES) {
    let mod;
    try {
      mod = require(`${pkg}/${apiVersion}/${kind}`);
    } catch (e) {
      if (e.code === 'MODULE_NOT_FOUND' || e.code === 'ERR_PACKAGE_PATH_NOT_EXPORTED') continue;
      throw e;
    }
    const cls = mod[kind];
    if (cls && cls.apiVersion === apiVersion && cls.kind === kind) return cls;
  }
  return null;
}

// A Proxy over `value` (and, lazily, everything under it) that records in
// `seen` which keys of each object were read and whether its keys were listed.
function track(value, seen) {
  if (value === null || typeof value !== 'object') return value;
  let t = seen.get(value);
  if (!t) {
    t = { read: new Set(), listed: false };
    const read = (k) => typeof k === 'string' && t.read.add(k);
    t.proxy = new Proxy(value, {
      get(o, k) { read(k); return track(o[k], seen); },
      has(o, k) { read(k); return k in o; },
      getOwnPropertyDescriptor(o, k) { read(k); return Reflect.getOwnPropertyDescriptor(o, k); },
      ownKeys(o) { t.listed = true; return Reflect.ownKeys(o); },
    });
    seen.set(value, t);
  }
  return t.proxy;
}

function join(path, key) {
  if (typeof key === 'number') return `${path}[${key}]`;
  const name = /^[A-Za-z_$][\w$-]*$/.test(key) ? key : JSON.stringify(key);
  return path ? `${path}.${name}` : name;
}

// Paths of keys the validator never read, in objects it did look into.
function unknownFields(value, seen, path, out) {
  if (Array.isArray(value)) {
    value.forEach((v, i) => unknownFields(v, seen, join(path, i), out));
  } else if (value !== null && typeof value === 'object') {
    const t = seen.get(value);
    const strict = t && !t.listed && t.read.size > 0;
    for (const [k, v] of Object.entries(value)) {
      if (strict && !t.read.has(k)) out.push(join(path, k));
      else unknownFields(v, seen, join(path, k), out);
    }
  }
  return out;
}

// ajv's JSON Pointer ("/spec/ports/0/port") as "spec.ports[0].port".
function pointerToPath(obj, pointer) {
  let path = '';
  let node = obj;
  for (const raw of pointer.split('/').slice(1)) {
    const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    const key = Array.isArray(node) ? Number(seg) : seg;
    path = join(path, key);
    node = node == null ? undefined : node[key];
  }
  return path || '(root)';
}

function validate(obj) {
  const errors = [];
  const cls = modelClass(obj.apiVersion, obj.kind);
  if (!cls) {
    return { errors: [['apiVersion', `unknown apiVersion/kind ${obj.apiVersion} ${obj.kind}`]], checked: false };
  }
  const seen = new WeakMap();
  try {
    cls.prototype.validate.call(track(obj, seen));
  } catch (e) {
    if (!Array.isArray(e.errors)) throw e;
    for (const err of e.errors) {
      const allowed = err.params && err.params.allowedValues;
      errors.push([pointerToPath(obj, err.instancePath),
        err.message + (allowed ? `: ${allowed.join(', ')}` : '')]);
    }
  }
  for (const path of unknownFields(obj, seen, '', [])) errors.push([path, 'unknown field']);
  return { errors, checked: true };
}

function main() {
  let objects;
  try {
    objects = JSON.parse(require('fs').readFileSync(0, 'utf8'));
  } catch (e) {
    console.error(`cannot parse stdin as JSON: ${e.message}`);
    return 1;
  }
  // An empty list most likely means the rendering before us failed.
  if (!Array.isArray(objects) || objects.length === 0) {
    console.error('stdin must be a non-empty JSON array of Kubernetes objects');
    return 1;
  }
  let failed = 0, validated = 0;
  for (const obj of objects) {
    const o = obj !== null && typeof obj === 'object' ? obj : {};
    const name = `${o.kind}/${o.metadata && o.metadata.name}`;
    const result = validate(o);
    validated += result.checked ? 1 : 0;
    for (const line of new Set(result.errors.map(([path, msg]) => `${name}: ${path}: ${msg}`))) {
      console.log(line);
      failed++;
    }
  }
  // Every object validated is also checked strictly (both kubernetes-models
  // and the prometheus-operator models go through the same compiled code).
  console.error(`validated ${validated} objects (${validated} strict)`);
  return failed ? 1 : 0;
}

process.exitCode = main();
