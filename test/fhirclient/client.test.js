// The agent's FHIR facade driven by a third-party client, fhir-kit-client, as an EHR would use
// it: a real `medchain dev` node and agent, a SMART backend-services token (an ES384 client
// assertion, RFC 7523), then CRUD, vread, history, search by each parameter, paging to the end,
// conditional create, an If-Match conflict, a transaction, $export, and unknown parameters
// refused. Run by .ci/run (`make test-fhirclient`); needs MEDCHAIN_BIN (default ../../bin/medchain).
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const Client = require('fhir-kit-client');

const bin = process.env.MEDCHAIN_BIN || path.resolve(__dirname, '../../bin/medchain');
// The node API stays on its configured address (127.0.0.1:8080): the network key's holder is
// registered there at genesis.
const agentAddr = process.env.MEDCHAIN_AGENT || '127.0.0.1:18481';
const base = `http://${agentAddr}/fhir`;
const run = crypto.randomBytes(4).toString('hex'); // markers unique to this run

let dev;
let home;
let client;
let token;
let signingKey;

function b64url(buf) {
  return Buffer.from(buf).toString('base64url');
}

// A backend service's client assertion: a JWT signed ES384 with the registered key.
function assertion() {
  const header = { alg: 'ES384', kid: 'ci', typ: 'JWT' };
  const now = Math.floor(Date.now() / 1000);
  const claims = { iss: 'ci-backend', sub: 'ci-backend', aud: `http://${agentAddr}/auth/token`, exp: now + 240, jti: crypto.randomUUID() };
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
  const sig = crypto.sign('sha384', Buffer.from(input), { key: signingKey, dsaEncoding: 'ieee-p1363' });
  return `${input}.${b64url(sig)}`;
}

async function backendToken(scope) {
  const res = await fetch(`http://${agentAddr}/auth/token`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'client_credentials', scope,
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: assertion(),
    }),
  });
  const body = await res.json();
  assert.equal(res.status, 200, JSON.stringify(body));
  return body.access_token;
}

// status of a failed fhir-kit-client call.
async function failure(promise) {
  try {
    await promise;
  } catch (err) {
    return err.response ? err.response.status : err;
  }
  assert.fail('the request succeeded');
}

function observation(extra) {
  return {
    resourceType: 'Observation', status: 'final',
    category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'vital-signs' }] }],
    code: { coding: [{ system: 'http://loinc.org', code: '8867-4' }], text: 'heart rate' },
    subject: { reference: 'Patient/example' }, effectiveDateTime: '2026-03-04T10:00:00Z',
    valueQuantity: { value: 61, unit: '/min' }, ...extra,
  };
}

before(async () => {
  home = fs.mkdtempSync(path.join(os.tmpdir(), 'medchain-fhirclient-'));
  const { privateKey, publicKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-384' });
  signingKey = privateKey;
  const jwk = { ...publicKey.export({ format: 'jwk' }), kid: 'ci', alg: 'ES384', use: 'sig' };
  fs.writeFileSync(path.join(home, 'smart-clients.json'),
    JSON.stringify([{ client_id: 'ci-backend', name: 'CI backend', scope: 'system/*.cruds', jwks: { keys: [jwk] } }]));
  dev = spawn(bin, ['dev', '--home', home, '--agent', agentAddr], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`medchain dev did not start:\n${out}`)), 120000);
    dev.stdout.on('data', (chunk) => {
      out += chunk;
      if (out.includes('Press Ctrl-C')) {
        clearTimeout(timer);
        resolve();
      }
    });
    dev.on('exit', (code) => reject(new Error(`medchain dev exited (${code}):\n${out}`)));
  });
  token = await backendToken('system/*.cruds');
  client = new Client({ baseUrl: base, bearerToken: token });
});

after(async () => {
  if (dev && dev.exitCode === null) {
    const exited = new Promise((resolve) => dev.on('exit', resolve));
    dev.kill('SIGINT');
    await exited;
  }
  if (home) fs.rmSync(home, { recursive: true, force: true });
});

test('without a token nothing is answered; the SMART configuration is public', async () => {
  const anon = new Client({ baseUrl: base });
  assert.equal(await failure(anon.read({ resourceType: 'Patient', id: 'example' })), 401);
  const conf = await (await fetch(`${base}/.well-known/smart-configuration`)).json();
  assert.equal(conf.token_endpoint, `http://${agentAddr}/auth/token`);
  const cs = await client.capabilityStatement();
  assert.equal(cs.resourceType, 'CapabilityStatement');
});

test('create, read, update, vread, history', async () => {
  const created = await client.create({ resourceType: 'Observation', body: observation({ identifier: [{ system: 'urn:ci', value: `crud-${run}` }] }) });
  assert.ok(created.id);
  assert.equal(created.meta.versionId, '1');
  const read = await client.read({ resourceType: 'Observation', id: created.id });
  assert.equal(read.valueQuantity.value, 61);
  const updated = await client.update({ resourceType: 'Observation', id: created.id, body: { ...read, valueQuantity: { value: 62, unit: '/min' } } });
  assert.equal(updated.meta.versionId, '2');
  const v1 = await client.vread({ resourceType: 'Observation', id: created.id, version: '1' });
  assert.equal(v1.valueQuantity.value, 61);
  const history = await client.history({ resourceType: 'Observation', id: created.id });
  assert.deepEqual(history.entry.map((e) => e.resource.meta.versionId), ['2', '1']);
  // If-Match on a stale version is a conflict.
  const stale = await failure(client.update({ resourceType: 'Observation', id: created.id, body: read, options: { headers: { 'If-Match': 'W/"1"' } } }));
  assert.equal(stale, 412);
});

test('search by each parameter finds the resource; unknown parameters are refused', async () => {
  const marker = `search-${run}`;
  const created = await client.create({ resourceType: 'Observation', body: observation({ identifier: [{ system: 'urn:ci', value: marker }] }) });
  const queries = {
    _id: created.id,
    identifier: `urn:ci|${marker}`,
    code: 'http://loinc.org|8867-4',
    category: 'vital-signs',
    status: 'final',
    date: 'ge2026-03-04',
    _lastUpdated: 'ge2000-01-01',
  };
  for (const [param, value] of Object.entries(queries)) {
    const bundle = await client.search({ resourceType: 'Observation', searchParams: { patient: 'example', [param]: value, _count: 100 } });
    const found = [];
    for (let page = bundle; page; page = await client.nextPage(page)) {
      found.push(...(page.entry || []).map((e) => e.resource.id));
    }
    assert.ok(found.includes(created.id), `search by ${param}=${value} does not find it`);
  }
  assert.equal(await failure(client.search({ resourceType: 'Observation', searchParams: { patient: 'example', 'made-up': 'x' } })), 400);
});

test('paging goes to the end, each resource once', async () => {
  const marker = `page-${run}`;
  const ids = [];
  for (let i = 0; i < 5; i++) {
    ids.push((await client.create({ resourceType: 'Observation', body: observation({ identifier: [{ system: 'urn:ci', value: marker }] }) })).id);
  }
  const seen = [];
  let page = await client.search({ resourceType: 'Observation', searchParams: { patient: 'example', identifier: `urn:ci|${marker}`, _count: 2 } });
  for (let n = 0; page; n++) {
    assert.ok(n < 10, 'paging does not end');
    seen.push(...(page.entry || []).map((e) => e.resource.id));
    page = await client.nextPage(page);
  }
  assert.deepEqual([...seen].sort(), [...ids].sort());
});

test('conditional create answers the existing resource', async () => {
  const body = observation({ identifier: [{ system: 'urn:ci', value: `cond-${run}` }] });
  const headers = { 'If-None-Exist': `identifier=urn:ci|cond-${run}` };
  const first = await client.create({ resourceType: 'Observation', body, options: { headers } });
  const second = await client.create({ resourceType: 'Observation', body, options: { headers } });
  assert.equal(second.id, first.id);
});

test('a transaction resolves urn:uuid references and commits all its entries', async () => {
  const bundle = {
    resourceType: 'Bundle', type: 'transaction',
    entry: [
      { fullUrl: 'urn:uuid:5c3a1b1e-0000-4000-8000-000000000001', request: { method: 'POST', url: 'Encounter' },
        resource: { resourceType: 'Encounter', status: 'finished', class: { code: 'AMB' }, subject: { reference: 'Patient/example' } } },
      { request: { method: 'POST', url: 'Observation' },
        resource: observation({ encounter: { reference: 'urn:uuid:5c3a1b1e-0000-4000-8000-000000000001' } }) },
    ],
  };
  const res = await client.transaction({ body: bundle });
  assert.equal(res.type, 'transaction-response');
  assert.deepEqual(res.entry.map((e) => e.response.status), ['201 Created', '201 Created']);
  const encounter = res.entry[0].response.location.split('/')[3];
  const obs = await client.read({ resourceType: 'Observation', id: res.entry[1].response.location.split('/')[3] });
  assert.equal(obs.encounter.reference, `Encounter/${encounter}`);
});

test('$export: asynchronous, NDJSON by type', async () => {
  const headers = { Authorization: `Bearer ${token}`, Accept: 'application/fhir+json' };
  const kick = await fetch(`${base}/Patient/$export?_type=Observation`, { headers: { ...headers, Prefer: 'respond-async' } });
  assert.equal(kick.status, 202);
  const status = kick.headers.get('content-location');
  let manifest;
  for (let i = 0; i < 300 && !manifest; i++) {
    const res = await fetch(status, { headers });
    if (res.status === 200) manifest = await res.json();
    else {
      assert.equal(res.status, 202);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  assert.ok(manifest, 'the export did not end');
  assert.deepEqual(manifest.output.map((o) => o.type), ['Observation']);
  const ndjson = await (await fetch(manifest.output[0].url, { headers: { ...headers, Accept: 'application/fhir+ndjson' } })).text();
  const lines = ndjson.trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(lines.length, manifest.output[0].count);
  assert.ok(lines.every((r) => r.resourceType === 'Observation'));
});
