// The list query of the Frappe double: GET /api/resource/{doctype} as Frappe v15 answers it. It follows, in order:
//   frappe/api/v1.py document_list     fields = json.loads(fields) (a 500 JSONDecodeError when malformed);
//                                      limit_page_length defaults to `limit` or 20, only when absent
//   frappe/client.py get_list          → frappe/desk/reportview.py validate_args:
//     parse_json                       filters / or_filters parsed (a 500 JSONDecodeError when malformed)
//     validate_fields/validate_filters an unknown field → 417 DataError "Field not permitted in query: x"
//   frappe/model/db_query.py execute   no read permission → 403 PermissionError ("Insufficient Permission for")
//     build_conditions → utils/data.py get_filter: a condition of fewer than 3 values, or an unknown operator
//                                      → 417 ValidationError; filters AND (or_filters OR'ed together)
//     prepare_filter_condition         ifnull(column, '') for text, numbers for Check/Int/Float/Currency
//     order_by                         default: the doctype's sort field; an unknown column is MariaDB's 500
//     add_limit                        cint(limit_page_length) or no LIMIT at all (0 means every row)
// Text comparisons and ordering use a case- and accent-insensitive collator, like MariaDB's utf8mb4_unicode_ci.
// What the double does not model (field expressions, child-table filters, tree operators) answers 501, so a test
// never passes against behaviour the double merely guesses.

export type FieldType = 'Data' | 'Link' | 'Check' | 'Int' | 'Float' | 'Currency' | 'Datetime' | 'Text' | 'Attach Image';

export interface DoctypeMeta {
  name: string;
  fields: Record<string, FieldType>;
  sortField: string;
  sortOrder: 'asc' | 'desc';
}

export type Doc = Record<string, unknown> & { name: string; creation: string; modified: string };

/** An error as Frappe's handle_exception answers it on /api/ (JSON with exc_type and the message log). */
export class FrappeHttpError extends Error {
  constructor(
    readonly status: number,
    readonly excType: string,
    message: string,
    /** frappe.throw puts the message in _server_messages; a bare raise leaves it out. */
    readonly thrown = true,
    /** frappe.flags.error_message (the permission errors set it). */
    readonly errorMessage?: string,
  ) {
    super(message);
  }
}

export const notModelled = (what: string) =>
  new FrappeHttpError(501, 'NotImplementedError', `The Frappe double does not model ${what}.`, true);

// frappe/model/__init__.py
export const DEFAULT_FIELDS = ['doctype', 'name', 'owner', 'creation', 'modified', 'modified_by', 'docstatus', 'idx'];
const OPTIONAL_FIELDS = ['_user_tags', '_comments', '_assign', '_liked_by', '_seen'];
const CHILD_TABLE_FIELDS = ['parent', 'parentfield', 'parenttype'];
const STANDARD_TYPES: Record<string, FieldType> = {
  name: 'Data',
  owner: 'Data',
  creation: 'Datetime',
  modified: 'Datetime',
  modified_by: 'Data',
  docstatus: 'Int',
  idx: 'Int',
};
const isStandard = (field: string) =>
  DEFAULT_FIELDS.includes(field) || OPTIONAL_FIELDS.includes(field) || CHILD_TABLE_FIELDS.includes(field);

// frappe/utils/data.py get_filter (v15), in its order.
const VALID_OPERATORS = [
  '=',
  '!=',
  '>',
  '<',
  '>=',
  '<=',
  'like',
  'not like',
  'in',
  'not in',
  'is',
  'between',
  'timespan',
  'previous',
  'next',
  'ancestors of',
  'descendants of',
  'not ancestors of',
  'not descendants of',
  'descendants of (inclusive)',
];
const MODELLED_OPERATORS = new Set(VALID_OPERATORS.slice(0, 12));
const NUMERIC: ReadonlySet<FieldType> = new Set(['Check', 'Int', 'Float', 'Currency']);

export const collator = new Intl.Collator('en', { sensitivity: 'base' });

export interface ListParams {
  [param: string]: string | undefined;
}

export interface ListContext {
  meta: DoctypeMeta;
  docs: Iterable<Doc>;
  /** False: the user may not read the doctype (403 after the argument checks, as Frappe orders them). */
  canRead: boolean;
}

/** The `data` of a list answer, or a FrappeHttpError. `params` are the query parameters as strings. */
export function runListQuery(context: ListContext, params: ListParams): Record<string, unknown>[] {
  const { meta } = context;
  const fields = parseFields(params.fields);
  // v1.document_list: setdefault("limit_page_length", limit or limit_page_length or 20)
  const pageLength =
    'limit_page_length' in params ? params.limit_page_length : truthy(params.limit) ? params.limit : '20';
  const filters = parseJsonParam(params.filters);
  const orFilters = parseJsonParam(params.or_filters);
  const columns = validateFields(meta, fields);
  if (truthy(filters)) validateFilters(meta, filters);
  if (truthy(orFilters)) validateFilters(meta, orFilters);
  if (!context.canRead) {
    throw new FrappeHttpError(
      403,
      'PermissionError',
      meta.name,
      false,
      `Insufficient Permission for <strong>${meta.name}</strong>`,
    );
  }
  const andConditions = toConditions(meta, filters);
  const orConditions = toConditions(meta, orFilters);
  const order = parseOrderBy(meta, params.order_by);
  const start = cint(params.limit_start);
  const length = truthy(pageLength) ? cint(pageLength) : 0;
  if (start < 0 || length < 0) {
    throw new FrappeHttpError(500, 'ProgrammingError', '(1064, "You have an error in your SQL syntax")', false);
  }
  const rows = [...context.docs].filter(
    (doc) =>
      andConditions.every((condition) => condition(doc)) &&
      (orConditions.length === 0 || orConditions.some((condition) => condition(doc))),
  );
  rows.sort((a, b) => {
    for (const [field, direction] of order) {
      const compared = compareValues(fieldType(meta, field), a[field], b[field]);
      if (compared !== 0) return direction === 'asc' ? compared : -compared;
    }
    return 0;
  });
  const page = length > 0 ? rows.slice(start, start + length) : rows;
  return page.map((doc) => Object.fromEntries(columns.map((field) => [field, doc[field] ?? null])));
}

/** Python truthiness of a query parameter or parsed JSON value. */
function truthy(value: unknown): boolean {
  if (Array.isArray(value)) return value.length > 0;
  if (value && typeof value === 'object') return Object.keys(value).length > 0;
  return Boolean(value);
}

/** A value as SQL text (MariaDB casts numbers to text; objects only arrive from malformed filters). */
const sqlText = (value: unknown): string =>
  value === null || value === undefined
    ? ''
    : typeof value === 'object'
      ? JSON.stringify(value)
      : String(value as string);

/** frappe.utils.cint: int(float(value)), 0 when that fails. */
export function cint(value: unknown): number {
  const text = sqlText(value).trim();
  const valid = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text);
  const number = Number.parseFloat(text);
  return valid && Number.isFinite(number) ? Math.trunc(number) : 0;
}

function jsonDecodeError(what: string): FrappeHttpError {
  return new FrappeHttpError(500, 'JSONDecodeError', `${what}: Expecting value`, false);
}

function parseFields(raw: string | undefined): string[] {
  if (!raw) return ['name'];
  let fields: unknown;
  try {
    fields = JSON.parse(raw);
  } catch {
    throw jsonDecodeError('fields');
  }
  if (fields === '*') return ['*'];
  if (!Array.isArray(fields) || !fields.every((field) => typeof field === 'string')) {
    throw notModelled('fields that are not a JSON list of field names');
  }
  return fields.length === 0 ? ['name'] : fields;
}

function parseJsonParam(raw: string | undefined): unknown {
  if (!raw) return undefined;
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    throw jsonDecodeError('filters');
  }
}

const fieldNotPermitted = (field: unknown) =>
  new FrappeHttpError(417, 'DataError', `Field not permitted in query: ${String(field)}`);

function validateFields(meta: DoctypeMeta, fields: string[]): string[] {
  if (fields.length === 1 && fields[0] === '*') return [...DEFAULT_FIELDS.slice(1), ...Object.keys(meta.fields)];
  for (const field of fields) {
    // reportview.extract_fieldnames: anything with special characters is parsed as SQL, which the double does not.
    if (!/^\w+$/.test(field)) throw notModelled(`field expressions such as ${JSON.stringify(field)}`);
    if (!isStandard(field) && !(field in meta.fields)) throw fieldNotPermitted(field);
  }
  return fields;
}

function validateFilters(meta: DoctypeMeta, filters: unknown): void {
  if (Array.isArray(filters)) {
    for (const condition of filters) {
      if (!Array.isArray(condition)) throw notModelled('filters given as SQL strings');
      const [doctype, field] = condition.length === 3 ? [meta.name, condition[0]] : [condition[0], condition[1]];
      if (doctype !== meta.name) {
        throw condition.length === 4
          ? notModelled(`filters on other doctypes (${JSON.stringify(doctype)})`)
          : notModelled(`a condition of ${condition.length} values (Frappe reads its first as a doctype)`);
      }
      if (typeof field !== 'string') throw notModelled('a field name that is not text');
      if (field.includes('.')) throw notModelled('child-table fields in filters');
      if (!isStandard(field) && !(field in meta.fields)) throw fieldNotPermitted(field);
    }
  } else if (typeof filters === 'object' && filters !== null) {
    for (const field of Object.keys(filters)) {
      if (!isStandard(field) && !(field in meta.fields)) throw fieldNotPermitted(field);
    }
  } else {
    throw notModelled('filters that are neither a list nor an object');
  }
}

type Condition = (doc: Doc) => boolean;

/** utils/data.py get_filter + db_query prepare_filter_condition, for the modelled operators. */
function toConditions(meta: DoctypeMeta, filters: unknown): Condition[] {
  if (!truthy(filters)) return [];
  const list: unknown[][] = Array.isArray(filters)
    ? (filters as unknown[][])
    : Object.entries(filters as object).map(([key, value]) =>
        Array.isArray(value) ? [meta.name, key, value[0], value[1]] : [meta.name, key, '=', value],
      );
  return list.map((raw) => {
    let condition = raw.length === 3 ? [meta.name, ...raw] : raw.length > 4 ? raw.slice(0, 4) : raw;
    if (condition.length !== 4) {
      throw new FrappeHttpError(
        417,
        'ValidationError',
        `Filter must have 4 values (doctype, fieldname, operator, value): ${pythonList(raw)}`,
      );
    }
    condition = [...condition];
    if (!condition[2]) condition[2] = '=';
    const operator = String(condition[2]).toLowerCase();
    if (!VALID_OPERATORS.includes(operator)) {
      throw new FrappeHttpError(417, 'ValidationError', `Operator must be one of ${VALID_OPERATORS.join(', ')}`);
    }
    if (!MODELLED_OPERATORS.has(operator)) throw notModelled(`the operator ${JSON.stringify(operator)}`);
    return makeCondition(meta, String(condition[1]), operator, condition[3]);
  });
}

function makeCondition(meta: DoctypeMeta, field: string, operator: string, value: unknown): Condition {
  const type = fieldType(meta, field);
  const column = (doc: Doc) => doc[field];
  switch (operator) {
    case 'in':
    case 'not in': {
      const values = (Array.isArray(value) ? value : sqlText(value).split(',')).map((entry) => sqlText(entry).trim());
      const list = values.length > 0 ? values : [''];
      const inList = (doc: Doc) => list.some((entry) => compareValues(type, ifNull(column(doc), type), entry) === 0);
      return operator === 'in' ? inList : (doc) => !inList(doc);
    }
    case 'is': {
      if (value !== 'set' && value !== 'not set') throw notModelled(`"is" with ${JSON.stringify(value)}`);
      const isSet = (doc: Doc) => sqlText(column(doc)) !== '';
      return value === 'set' ? isSet : (doc) => !isSet(doc);
    }
    case 'like':
    case 'not like': {
      const pattern = likePattern(sqlText(value));
      const matches = (doc: Doc) => pattern.test(sqlText(column(doc)));
      return operator === 'like' ? matches : (doc) => !matches(doc);
    }
    case 'between': {
      if (!Array.isArray(value) || value.length < 2) throw notModelled('"between" without two values');
      const [from, to] = type === 'Datetime' ? value.map((entry) => datetime(entry)) : value;
      return (doc) => {
        const current = ifNull(column(doc), type);
        return compareValues(type, current, from) >= 0 && compareValues(type, current, to) <= 0;
      };
    }
    default: {
      const test = {
        '=': (c: number) => c === 0,
        '!=': (c: number) => c !== 0,
        '>': (c: number) => c > 0,
        '<': (c: number) => c < 0,
        '>=': (c: number) => c >= 0,
        '<=': (c: number) => c <= 0,
      }[operator]!;
      return (doc) => test(compareValues(type, ifNull(column(doc), type), value));
    }
  }
}

/** The column's value as SQL sees it after ifnull(column, fallback): '' for text, 0 for numbers. */
function ifNull(value: unknown, type: FieldType): unknown {
  if (value !== null && value !== undefined) return value;
  return NUMERIC.has(type) ? 0 : '';
}

function fieldType(meta: DoctypeMeta, field: string): FieldType {
  return meta.fields[field] ?? STANDARD_TYPES[field] ?? 'Data';
}

/** MariaDB comparison: numbers for numeric columns, datetimes normalised, text through the collation. */
export function compareValues(type: FieldType, a: unknown, b: unknown): number {
  const aNull = a === null || a === undefined;
  const bNull = b === null || b === undefined;
  if (aNull || bNull) return aNull && bNull ? 0 : aNull ? -1 : 1; // NULL sorts first
  if (NUMERIC.has(type)) return Math.sign(toNumber(a) - toNumber(b));
  if (type === 'Datetime') {
    const [x, y] = [datetime(a), datetime(b)];
    return x < y ? -1 : x > y ? 1 : 0;
  }
  return collator.compare(sqlText(a).trimEnd(), sqlText(b).trimEnd());
}

function toNumber(value: unknown): number {
  if (typeof value === 'number') return value;
  if (typeof value === 'boolean') return value ? 1 : 0;
  const number = Number.parseFloat(String(value));
  return Number.isFinite(number) ? number : 0;
}

/** A date or datetime string as `YYYY-MM-DD HH:MM:SS.ffffff` (MariaDB converts the string to DATETIME(6)). */
export function datetime(value: unknown): string {
  const text = String(value).trim();
  const match = /^(\d{4}-\d{2}-\d{2})(?:[ T](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?)?$/.exec(text);
  if (!match) return text;
  const [, date, hours = '00', minutes = '00', seconds = '00', fraction = ''] = match;
  return `${date} ${hours}:${minutes}:${seconds}.${fraction.padEnd(6, '0')}`;
}

/** SQL LIKE (%, _, backslash escapes), case-insensitive like the collation. */
function likePattern(pattern: string): RegExp {
  let source = '';
  for (let index = 0; index < pattern.length; index++) {
    const char = pattern[index];
    if (char === '\\' && index + 1 < pattern.length) source += escapeRegExp(pattern[++index]);
    else if (char === '%') source += '.*';
    else if (char === '_') source += '.';
    else source += escapeRegExp(char);
  }
  return new RegExp(`^${source}$`, 'isu');
}

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');

const ORDER_TERM = /^(?:`?tab([\w ]+)`?\.)?`?(\w+)`?(?:\s+(asc|desc))?$/i;

function parseOrderBy(meta: DoctypeMeta, raw: string | undefined): [string, 'asc' | 'desc'][] {
  // frappe.database.utils.DefaultOrderBy: the doctype's sort field and order.
  if (!raw || raw === 'KEEP_DEFAULT_ORDERING') return [[meta.sortField, meta.sortOrder]];
  return raw.split(',').map((term) => {
    const match = ORDER_TERM.exec(term.trim());
    if (!match || (match[1] !== undefined && match[1] !== meta.name))
      throw notModelled(`order_by ${JSON.stringify(raw)}`);
    const field = match[2];
    if (!DEFAULT_FIELDS.includes(field) && !(field in meta.fields)) {
      throw new FrappeHttpError(500, 'OperationalError', `(1054, "Unknown column '${field}' in 'ORDER BY'")`, false);
    }
    return [field, (match[3]?.toLowerCase() as 'asc' | 'desc' | undefined) ?? 'asc'];
  });
}

/** str(list) as Python prints it, for Frappe's messages that quote a filter. */
function pythonList(value: unknown[]): string {
  const item = (entry: unknown): string =>
    typeof entry === 'string'
      ? `'${entry.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`
      : entry === null
        ? 'None'
        : entry === true
          ? 'True'
          : entry === false
            ? 'False'
            : Array.isArray(entry)
              ? pythonList(entry)
              : sqlText(entry);
  return `[${value.map(item).join(', ')}]`;
}
