// Qdrant's own OpenAPI description (pinned version) turned into request and response validators for
// the Qdrant test double. The double must refuse what the real server refuses, so every request it
// accepts is checked against the operation's parameters and request body, with the spec's OpenAPI 3.0
// dialect (nullable, formats such as uint64) translated to JSON Schema for ajv.
//
// The spec is not part of the repository, and tests read nothing outside it unless asked: the spec is used
// only when QDRANT_OPENAPI_SPEC names Qdrant's openapi.json (a file outside the repository, see the README's
// Qdrant section); otherwise loadQdrantOpenApi returns the reason instead of validators, and the tests print it.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';

export const QDRANT_VERSION = '1.18.3';

/** Qdrant's openapi.json to validate against, when QDRANT_OPENAPI_SPEC names one (a path, resolved as given). */
export const defaultSpecPath: string | undefined = process.env.QDRANT_OPENAPI_SPEC
  ? path.resolve(process.env.QDRANT_OPENAPI_SPEC)
  : undefined;

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

interface SpecParameter {
  name: string;
  in: 'path' | 'query' | 'header';
  required?: boolean;
  schema: JsonObject;
}

interface SpecOperation {
  operationId: string;
  parameters?: SpecParameter[];
  requestBody?: { required?: boolean; content: Record<string, { schema: JsonObject }> };
  responses: Record<string, { content?: Record<string, { schema: JsonObject }> }>;
}

/** A refusal in the words and status Qdrant uses for it. */
export interface SpecRefusal {
  status: number;
  error: string;
}

export interface RequestParts {
  pathParams: Record<string, string>;
  query: URLSearchParams;
  contentType: string | undefined;
  /** Raw body text for JSON operations (already known to be parseable when `body` is set). */
  body: unknown;
  hasBody: boolean;
}

export interface OperationValidator {
  operationId: string;
  method: string;
  pathTemplate: string;
  /** Query parameters the operation declares (e.g. `wait`), for the double's write bookkeeping. */
  queryParams: string[];
  bodyKind: 'json' | 'multipart' | 'none';
  /** Checks parameters and body; returns the refusal the real server would give, or undefined. */
  checkRequest(parts: RequestParts): SpecRefusal | undefined;
  /** Checks a JSON response the double is about to send; returns what is wrong, or undefined. */
  checkResponse(status: number, body: unknown): string | undefined;
}

export interface QdrantOpenApi {
  version: string;
  operations: OperationValidator[];
  find(method: string, pathTemplate: string): OperationValidator | undefined;
}

export type LoadedSpec = { spec: QdrantOpenApi } | { skipped: string };

const cache = new Map<string, LoadedSpec>();

const HAND_CHECKS =
  `the Qdrant double checks only routes, required fields and vector widths by hand, not every request ` +
  `against Qdrant ${QDRANT_VERSION}'s schema`;

/** Loads and compiles the spec once per process and path. */
export function loadQdrantOpenApi(specPath: string | undefined = defaultSpecPath): LoadedSpec {
  if (specPath === undefined) {
    return {
      skipped:
        `QDRANT_OPENAPI_SPEC is not set: ${HAND_CHECKS}. To validate against the spec, set it to Qdrant ` +
        `${QDRANT_VERSION}'s openapi.json (QDRANT_OPENAPI_SPEC=/path/to/openapi.json; see the README).`,
    };
  }
  let loaded = cache.get(specPath);
  if (!loaded) {
    loaded = existsSync(specPath)
      ? { spec: compile(JSON.parse(readFileSync(specPath, 'utf8')) as JsonObject) }
      : { skipped: `QDRANT_OPENAPI_SPEC names ${specPath}, which does not exist: ${HAND_CHECKS}.` };
    cache.set(specPath, loaded);
  }
  return loaded;
}

// ---- OpenAPI 3.0 → JSON Schema ----

const COMPONENT_REF = '#/components/schemas/';
const ROOT_ID = 'qdrant-openapi';

/** Rewrites one schema node: refs into the root document, `nullable` into a null type, oneOf into anyOf. */
function convert(node: Json): Json {
  if (Array.isArray(node)) return node.map(convert);
  if (node === null || typeof node !== 'object') return node;
  const out: JsonObject = {};
  for (const [key, value] of Object.entries(node)) {
    if (key === 'nullable' || key === 'example' || key === 'deprecated') continue;
    if (key === 'properties' && value && typeof value === 'object' && !Array.isArray(value)) {
      out.properties = Object.fromEntries(Object.entries(value).map(([name, schema]) => [name, convert(schema)]));
    } else if (key === '$ref' && typeof value === 'string' && value.startsWith(COMPONENT_REF)) {
      out.$ref = `${ROOT_ID}#/definitions/${value.slice(COMPONENT_REF.length)}`;
    } else if (key === 'oneOf') {
      // Qdrant deserializes these enums with serde's untagged "first variant that fits": anyOf, not
      // JSON Schema's "exactly one".
      out.anyOf = convert(value);
    } else {
      out[key] = convert(value);
    }
  }
  if (node.nullable === true) {
    if (typeof out.type === 'string') {
      out.type = [out.type, 'null'];
      if (Array.isArray(out.enum)) out.enum = [...out.enum, null];
    } else if (out.$ref !== undefined || out.anyOf !== undefined) {
      const { description, default: dflt, ...rest } = out;
      return {
        ...(description !== undefined ? { description } : {}),
        ...(dflt !== undefined ? { default: dflt } : {}),
        anyOf: [rest, { type: 'null' }],
      };
    } else if (out.type === undefined) {
      // `{"nullable": true}` alone is how the spec spells "or null" inside anyOf.
      out.type = 'null';
    }
  }
  return out;
}

const uint = (max: number) => (value: number) => Number.isInteger(value) && value >= 0 && value <= max;
const NUMBER_FORMATS: Record<string, (value: number) => boolean> = {
  uint: uint(Number.MAX_SAFE_INTEGER),
  uint64: uint(Number.MAX_SAFE_INTEGER),
  uint32: uint(2 ** 32 - 1),
  uint8: uint(255),
  int64: (value) => Number.isSafeInteger(value),
  float: (value) => Number.isFinite(value) && Math.abs(value) <= 3.4028234663852886e38,
  double: (value) => Number.isFinite(value),
};

function newAjv(coerceTypes: boolean): Ajv {
  const ajv = new Ajv({ strict: false, allErrors: false, coerceTypes, validateFormats: true });
  // ajv-formats is CommonJS; its default export arrives wrapped under NodeNext.
  const addFormats = ((addFormatsModule as unknown as { default?: typeof addFormatsModule }).default ??
    addFormatsModule) as unknown as (ajv: Ajv, formats: string[]) => void;
  addFormats(ajv, ['uuid', 'uri', 'date-time']);
  for (const [name, validate] of Object.entries(NUMBER_FORMATS)) ajv.addFormat(name, { type: 'number', validate });
  ajv.addFormat('partial-date-time', true);
  ajv.addFormat('binary', true);
  return ajv;
}

// Range checks are `validator` rules in Qdrant (422 "Validation error"); everything else fails serde
// deserialization first (400 "Format error").
const RANGE_KEYWORDS = new Set([
  'minimum',
  'maximum',
  'exclusiveMinimum',
  'exclusiveMaximum',
  'minLength',
  'maxLength',
  'minItems',
  'maxItems',
  'uniqueItems',
]);

function describeErrors(errors: ErrorObject[] | null | undefined, where: string): SpecRefusal {
  const list = errors ?? [];
  const text = list
    .map(
      (e) =>
        `${where}${e.instancePath || ''} ` +
        `${e.message ?? e.keyword}` +
        (e.params && 'additionalProperty' in e.params ? ` (${String(e.params.additionalProperty)})` : ''),
    )
    .join('; ');
  const range = list.length > 0 && list.every((e) => RANGE_KEYWORDS.has(e.keyword));
  return range
    ? { status: 422, error: `Validation error in JSON body: ${text}` }
    : { status: 400, error: `Format error in JSON body: ${text}` };
}

function compile(raw: JsonObject): QdrantOpenApi {
  const components = (raw.components as JsonObject).schemas as JsonObject;
  const definitions = Object.fromEntries(Object.entries(components).map(([name, schema]) => [name, convert(schema)]));
  const root = { $id: ROOT_ID, definitions } as JsonObject;
  const ajv = newAjv(false);
  const queryAjv = newAjv(true);
  ajv.addSchema(root);
  queryAjv.addSchema(root);

  /** Property names a body schema names at its top level (across anyOf branches); undefined = open. */
  const topLevelKeys = (schema: Json, seen = new Set<string>()): Set<string> | undefined => {
    if (!schema || typeof schema !== 'object' || Array.isArray(schema)) return undefined;
    if (typeof schema.$ref === 'string') {
      const name = schema.$ref.split('/').pop()!;
      if (seen.has(name)) return new Set();
      seen.add(name);
      return topLevelKeys(definitions[name] ?? null, seen);
    }
    if (Array.isArray(schema.anyOf)) {
      const keys = new Set<string>();
      for (const branch of schema.anyOf) {
        if (branch && typeof branch === 'object' && !Array.isArray(branch) && branch.type === 'null') continue;
        const branchKeys = topLevelKeys(branch, seen);
        if (!branchKeys) return undefined;
        for (const key of branchKeys) keys.add(key);
      }
      return keys;
    }
    if (schema.additionalProperties !== undefined && schema.additionalProperties !== false) return undefined;
    if (schema.properties && typeof schema.properties === 'object') return new Set(Object.keys(schema.properties));
    return undefined;
  };

  const operations: OperationValidator[] = [];
  for (const [pathTemplate, methods] of Object.entries(raw.paths as JsonObject)) {
    for (const [method, rawOperation] of Object.entries(methods as JsonObject)) {
      const operation = rawOperation as unknown as SpecOperation;
      const parameters = operation.parameters ?? [];
      const pathSchema = {
        type: 'object',
        properties: Object.fromEntries(
          parameters.filter((p) => p.in === 'path').map((p) => [p.name, convert(p.schema as Json)]),
        ),
      };
      const queryParameters = parameters.filter((p) => p.in === 'query');
      const querySchema = {
        type: 'object',
        properties: Object.fromEntries(queryParameters.map((p) => [p.name, convert(p.schema as Json)])),
        required: queryParameters.filter((p) => p.required).map((p) => p.name),
      };
      const validatePath = queryAjv.compile(pathSchema);
      const validateQuery = queryAjv.compile(querySchema);
      const content = operation.requestBody?.content ?? {};
      const bodyKind: OperationValidator['bodyKind'] = content['application/json']
        ? 'json'
        : content['multipart/form-data']
          ? 'multipart'
          : 'none';
      const bodySchema = content['application/json']?.schema ? convert(content['application/json'].schema) : undefined;
      const validateBody: ValidateFunction | undefined = bodySchema ? ajv.compile(bodySchema as object) : undefined;
      const bodyKeys = bodySchema ? topLevelKeys(bodySchema) : undefined;
      const responseSchema = operation.responses['200']?.content?.['application/json']?.schema;
      let validateResponse: ValidateFunction | undefined;

      operations.push({
        operationId: operation.operationId,
        method: method.toUpperCase(),
        pathTemplate,
        queryParams: queryParameters.map((p) => p.name),
        bodyKind,
        checkRequest(parts) {
          if (!validatePath({ ...parts.pathParams })) {
            return { status: 400, error: `Path deserialize error: ${queryAjv.errorsText(validatePath.errors)}` };
          }
          const query: Record<string, unknown> = {};
          for (const key of new Set(parts.query.keys())) {
            const values = parts.query.getAll(key);
            if (!(key in querySchema.properties)) {
              // Real Qdrant ignores unknown query parameters; a misspelled `wait` would then silently
              // not wait. The double refuses them so that such a request cannot pass a test.
              return {
                status: 400,
                error:
                  `Query deserialize error: unknown parameter \`${key}\` (the double refuses what Qdrant ` +
                  `${QDRANT_VERSION} would silently ignore)`,
              };
            }
            if (values.length > 1) return { status: 400, error: `Query deserialize error: duplicate field \`${key}\`` };
            query[key] = values[0];
          }
          for (const [key, value] of Object.entries(query)) {
            // serde_urlencoded reads booleans only as `true`/`false`; ajv would also coerce 1/0.
            const schema = (querySchema.properties as Record<string, JsonObject>)[key];
            if (schema?.type === 'boolean' && value !== 'true' && value !== 'false') {
              return {
                status: 400,
                error:
                  `Query deserialize error: invalid value for \`${key}\`: ${JSON.stringify(value)} is not ` +
                  `true or false`,
              };
            }
          }
          if (!validateQuery(query))
            return { status: 400, error: `Query deserialize error: ${queryAjv.errorsText(validateQuery.errors)}` };
          if (bodyKind === 'json') {
            // actix's Json extractor needs a body even where the spec leaves requestBody optional.
            if (!parts.hasBody)
              return { status: 400, error: 'Json deserialize error: EOF while parsing a value at line 1 column 0' };
            if (!parts.contentType?.startsWith('application/json'))
              return { status: 400, error: 'Content type error: expected application/json' };
            if (!validateBody!(parts.body)) return describeErrors(validateBody!.errors, 'body');
            if (bodyKeys && parts.body && typeof parts.body === 'object' && !Array.isArray(parts.body)) {
              const unknown = Object.keys(parts.body).filter((key) => !bodyKeys.has(key));
              if (unknown.length > 0) {
                // Qdrant ignores most unknown fields; an ignored field is a bug in the caller, so the
                // double refuses it.
                return {
                  status: 400,
                  error:
                    `Format error in JSON body: unknown field(s) ` +
                    `${unknown.map((k) => `\`${k}\``).join(', ')} (the double refuses what Qdrant ` +
                    `${QDRANT_VERSION} would silently ignore)`,
                };
              }
            }
          } else if (bodyKind === 'multipart') {
            if (!parts.contentType?.startsWith('multipart/form-data'))
              return { status: 400, error: 'Content type error: expected multipart/form-data' };
          }
          return undefined;
        },
        checkResponse(status, body) {
          if (status !== 200 || !responseSchema) return undefined;
          validateResponse ??= ajv.compile(convert(responseSchema as Json) as object);
          return validateResponse(body) ? undefined : ajv.errorsText(validateResponse.errors, { dataVar: 'response' });
        },
      });
    }
  }
  const byRoute = new Map(operations.map((op) => [`${op.method} ${op.pathTemplate}`, op]));
  return {
    version: String((raw.info as JsonObject).version as string),
    operations,
    find: (method, pathTemplate) => byRoute.get(`${method.toUpperCase()} ${pathTemplate}`),
  };
}
