// Checks a live service's OpenRPC document with the OpenRPC project's own tools, then calls
// every method with parameters built from the document alone; prints one JSON report that
// tests/clients/test_openrpc_tools.py judges.
//
// Usage: node openrpc.mjs URL TOKEN
//   URL    the service's /api endpoint; the document comes from its rpc.discover
//   TOKEN  sent as X-Api-Token, so private methods can be called too
//
// The report:
//   metaSchema     true, or ajv's errors against @open-rpc/meta-schema (the official schema)
//   schemaUtils    true, or the error of schema-utils-js' validateOpenRPCDocument
//   methods        per method: the params built from its schemas, MethodCallValidator's errors
//                  for them (and for a deliberately wrong call), the result, and whether the
//                  result matches the document's result schema
import { Client, HTTPTransport, RequestManager } from "@open-rpc/client-js";
import metaSchema from "@open-rpc/meta-schema";
import { MethodCallValidator, validateOpenRPCDocument } from "@open-rpc/schema-utils-js";
import Ajv from "ajv";

const [url, token] = process.argv.slice(2);
const client = new Client(
  new RequestManager([new HTTPTransport(url, { headers: { "X-Api-Token": token } })]),
);

// A value for a schema, from the schema only (the types the example services publish).
function sample(schema) {
  switch (schema.type) {
    case "integer":
      return 5;
    case "number":
      return 2.5;
    case "string":
      return "world";
    case "boolean":
      return true;
    case "array":
      return [sample(schema.items ?? {}), sample(schema.items ?? {})];
    case "object":
      return {};
    default:
      return 1;
  }
}

// A value of the wrong type for a schema: what the validator must reject.
function wrong(schema) {
  return schema.type === "string" ? 12 : "not-a-number";
}

function errorsOf(found) {
  if (Array.isArray(found)) return found.map((error) => String(error.message ?? error));
  return [String(found.message ?? found)]; // MethodNotFoundError
}

const document = await client.request({ method: "rpc.discover", params: [] });
const ajv = new Ajv({ strict: false, allErrors: true });
const checkMeta = ajv.compile(metaSchema);
const report = {
  openrpc: document.openrpc,
  metaSchema: checkMeta(document) ? true : checkMeta.errors,
  schemaUtils: true,
  methods: {},
};
const utilsResult = validateOpenRPCDocument(document);
if (utilsResult !== true) report.schemaUtils = String(utilsResult.message ?? utilsResult);

const validator = new MethodCallValidator(document);
for (const method of document.methods) {
  const byName = method.paramStructure === "by-name";
  const values = method.params.map((param) => sample(param.schema ?? {}));
  const params = byName
    ? Object.fromEntries(method.params.map((param, i) => [param.name, values[i]]))
    : values;
  const entry = {
    params,
    validatorErrors: errorsOf(validator.validate(method.name, values)),
  };
  if (method.params.length > 0) {
    const bad = method.params.map((param) => wrong(param.schema ?? {}));
    entry.wrongCallErrors = errorsOf(validator.validate(method.name, bad));
  }
  try {
    entry.result = await client.request({ method: method.name, params });
    const checkResult = ajv.compile(method.result?.schema ?? {});
    entry.resultMatchesSchema = checkResult(entry.result) ? true : checkResult.errors;
  } catch (error) {
    entry.error = { code: error.code ?? null, message: String(error.message ?? error) };
  }
  report.methods[method.name] = entry;
}
process.stdout.write(`${JSON.stringify(report)}\n`);
