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
//   parsed         true, or the error of parseOpenRPCDocument, which validates the document and
//                  replaces each "$ref" to components.schemas by the schema it names: named types
//                  are published once there, and MethodCallValidator, like a generated client,
//                  reads the parsed document (given the raw one it cannot resolve those refs)
//   methods        per method: the params built from its schemas, MethodCallValidator's errors
//                  for them (and for a deliberately wrong call), the result, and whether the
//                  result matches the document's result schema
import { Client, HTTPTransport, RequestManager } from "@open-rpc/client-js";
import metaSchema from "@open-rpc/meta-schema";
import {
  MethodCallValidator,
  parseOpenRPCDocument,
  validateOpenRPCDocument,
} from "@open-rpc/schema-utils-js";
import Ajv from "ajv";

const [url, token] = process.argv.slice(2);
const client = new Client(
  new RequestManager([new HTTPTransport(url, { headers: { "X-Api-Token": token } })]),
);

// Example strings for the formats the runtime publishes (JSON Schema's, and msgspec's decimal).
const FORMATS = {
  date: "2024-03-01",
  "date-time": "2024-03-01T12:00:00Z",
  uuid: "12345678-1234-5678-1234-567812345678",
  decimal: "9.99",
};

// A value for a (dereferenced) schema, from the schema only: the first of a choice, the
// required properties of an object, two items of an array.
function sample(schema) {
  if (schema.const !== undefined) return schema.const;
  if (schema.enum) return schema.enum[0];
  const choice = schema.anyOf ?? schema.oneOf;
  if (choice) return sample(choice[0]);
  switch (schema.type) {
    case "integer":
      return 5;
    case "number":
      return 2.5;
    case "string":
      return FORMATS[schema.format] ?? "world";
    case "boolean":
      return true;
    case "null":
      return null;
    case "array":
      if (schema.prefixItems) return schema.prefixItems.map(sample);
      return [sample(schema.items ?? {}), sample(schema.items ?? {})];
    case "object":
      return Object.fromEntries(
        (schema.required ?? []).map((key) => [key, sample(schema.properties?.[key] ?? {})]),
      );
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
let parsed;
try {
  parsed = await parseOpenRPCDocument(structuredClone(document));
  report.parsed = true;
} catch (error) {
  report.parsed = String(error.message ?? error);
  process.stdout.write(`${JSON.stringify(report)}\n`);
  process.exit(0);
}

const validator = new MethodCallValidator(parsed);
for (const method of parsed.methods) {
  // As the method's paramStructure asks: an object for "by-name", else an array (which the
  // validator, too, reads by the same rule).
  const shape = (values) =>
    method.paramStructure === "by-name"
      ? Object.fromEntries(method.params.map((param, i) => [param.name, values[i]]))
      : values;
  const params = shape(method.params.map((param) => sample(param.schema ?? {})));
  const entry = {
    params,
    validatorErrors: errorsOf(validator.validate(method.name, params)),
  };
  if (method.params.length > 0) {
    const bad = shape(method.params.map((param) => wrong(param.schema ?? {})));
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
