// Calls a live service (tests/clients/service.py) with three npm JSON-RPC clients, each used as its README shows, and
// prints what each one saw as one JSON document; tests/clients/test_js_clients.py judges it.
//
// Usage: node clients.mjs URL TOKEN MARK
//   URL    the service's /api endpoint
//   TOKEN  the token its private methods take (X-Api-Token)
//   MARK   a number: client i sends its notification as add(MARK + i, 1), so the test finds
//          each one in the server's log
//
// Nothing here decides pass or fail: every case records the value, or the error's code and
// data, or what was thrown, so a failure shows what the client really got.
import { Client, HTTPTransport, RequestManager } from "@open-rpc/client-js";
import jayson from "jayson";
import { JSONRPCClient } from "json-rpc-2.0";

const [url, token, mark] = process.argv.slice(2);
const TOKEN_HEADER = "X-Api-Token";

// The error of a failed call as the client surfaced it: its code and data, or what was thrown.
function failure(error) {
  if (error && typeof error === "object" && "code" in error) {
    return { code: error.code, data: error.data ?? null };
  }
  return { thrown: String(error) };
}

async function observe(cases) {
  const seen = {};
  for (const [name, run] of Object.entries(cases)) {
    try {
      seen[name] = { value: (await run()) ?? null };
    } catch (error) {
      seen[name] = { error: failure(error) };
    }
  }
  return seen;
}

// -- jayson: callback API; a null id makes a notification, a false callback builds a request --
function jaysonClient(headers = {}) {
  return jayson.Client.http({ ...splitURL(url), headers });
}

function splitURL(raw) {
  const parsed = new URL(raw);
  return { hostname: parsed.hostname, port: Number(parsed.port), path: parsed.pathname };
}

function jaysonCall(client, method, params, id) {
  return new Promise((resolve, reject) => {
    const callback = (err, response) => {
      if (err) return reject(err);
      if (response && response.error) return reject(response.error);
      return resolve(response ? response.result : undefined);
    };
    if (id === null) client.request(method, params, null, callback);
    else client.request(method, params, callback);
  });
}

function jaysonBatch(client) {
  const batch = [
    client.request("add", [1, 2], undefined, false),
    client.request("multiply", { a: 3, b: 4 }, undefined, false),
    client.request("fibonacci", [-1], undefined, false),
  ];
  const ids = batch.map((request) => request.id);
  return new Promise((resolve, reject) => {
    client.request(batch, (err, responses) => {
      if (err) return reject(err);
      const byId = new Map(responses.map((response) => [response.id, response]));
      return resolve(
        ids.map((id) => {
          const response = byId.get(id);
          return response.error ? { error: failure(response.error) } : { value: response.result };
        }),
      );
    });
  });
}

async function jaysonCases() {
  const client = jaysonClient();
  return observe({
    position: () => jaysonCall(client, "add", [1, 2]),
    name: () => jaysonCall(client, "multiply", { a: 6, b: 7 }),
    notification: () => jaysonCall(client, "add", [Number(mark) + 0, 1], null),
    batch: () => jaysonBatch(client),
    error_data: () => jaysonCall(client, "fibonacci", [-1]),
    unknown_method: () => jaysonCall(client, "nope", []),
    typed_refusal: () => jaysonCall(client, "add", ["ten", 1]),
    token: () => jaysonCall(jaysonClient({ [TOKEN_HEADER]: token }), "reset", []),
    wrong_token: () => jaysonCall(jaysonClient({ [TOKEN_HEADER]: "wrong" }), "reset", []),
  });
}

// -- json-rpc-2.0: the caller supplies the transport (fetch), as its README shows -----------
function jsonRpc2Client(headers = {}) {
  const client = new JSONRPCClient(async (request) => {
    const response = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body: JSON.stringify(request),
    });
    if (response.status === 200) {
      client.receive(await response.json());
    } else if (request.id !== undefined) {
      throw new Error(`HTTP ${response.status}`);
    }
  });
  return client;
}

async function jsonRpc2Batch(client) {
  const responses = await client.requestAdvanced([
    { jsonrpc: "2.0", id: 1, method: "add", params: [1, 2] },
    { jsonrpc: "2.0", id: 2, method: "multiply", params: { a: 3, b: 4 } },
    { jsonrpc: "2.0", id: 3, method: "fibonacci", params: [-1] },
  ]);
  const byId = new Map(responses.map((response) => [response.id, response]));
  return [1, 2, 3].map((id) => {
    const response = byId.get(id);
    return response.error ? { error: failure(response.error) } : { value: response.result };
  });
}

async function jsonRpc2Cases() {
  const client = jsonRpc2Client();
  return observe({
    position: () => client.request("add", [1, 2]),
    name: () => client.request("multiply", { a: 6, b: 7 }),
    notification: () => client.notify("add", [Number(mark) + 1, 1]),
    batch: () => jsonRpc2Batch(client),
    error_data: () => client.request("fibonacci", [-1]),
    unknown_method: () => client.request("nope", []),
    typed_refusal: () => client.request("add", ["ten", 1]),
    token: () => jsonRpc2Client({ [TOKEN_HEADER]: token }).request("reset"),
    wrong_token: () => jsonRpc2Client({ [TOKEN_HEADER]: "wrong" }).request("reset"),
  });
}

// -- @open-rpc/client-js: Client + RequestManager + HTTPTransport --------------------------
function openRpcClient(headers = {}) {
  return new Client(new RequestManager([new HTTPTransport(url, { headers })]));
}

async function openRpcBatch(client) {
  client.startBatch();
  const calls = [
    client.request({ method: "add", params: [1, 2] }),
    client.request({ method: "multiply", params: { a: 3, b: 4 } }),
    client.request({ method: "fibonacci", params: [-1] }),
  ];
  client.stopBatch();
  const settled = await Promise.allSettled(calls);
  return settled.map((outcome) =>
    outcome.status === "fulfilled" ? { value: outcome.value } : { error: failure(outcome.reason) },
  );
}

async function openRpcCases() {
  const client = openRpcClient();
  return observe({
    position: () => client.request({ method: "add", params: [1, 2] }),
    name: () => client.request({ method: "multiply", params: { a: 6, b: 7 } }),
    notification: () => client.notify({ method: "add", params: [Number(mark) + 2, 1] }),
    batch: () => openRpcBatch(client),
    error_data: () => client.request({ method: "fibonacci", params: [-1] }),
    unknown_method: () => client.request({ method: "nope", params: [] }),
    typed_refusal: () => client.request({ method: "add", params: ["ten", 1] }),
    token: () => openRpcClient({ [TOKEN_HEADER]: token }).request({ method: "reset", params: [] }),
    wrong_token: () =>
      openRpcClient({ [TOKEN_HEADER]: "wrong" }).request({ method: "reset", params: [] }),
  });
}

const report = {
  jayson: await jaysonCases(),
  "json-rpc-2.0": await jsonRpc2Cases(),
  "@open-rpc/client-js": await openRpcCases(),
};
process.stdout.write(`${JSON.stringify(report)}\n`);
