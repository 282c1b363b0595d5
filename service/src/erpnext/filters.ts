// Frappe list filters (ERPNEXT_ITEM_FILTERS) in the forms Frappe accepts: a list of [field, operator, value] or
// [doctype, field, operator, value] conditions, or an object {field: value} / {field: [operator, value]}
// (frappe/utils/data.py get_filter and make_filter_tuple, frappe v15). They are normalised to the list form so the
// client can add its own conditions (modified since, names in a batch) with AND. Checked at start-up, so a typo
// stops the service with an example instead of failing every sync.
export type FrappeCondition = [string, string, unknown] | [string, string, string, unknown];

/** The operators get_filter accepts (frappe v15); the hierarchy ones need a tree doctype (e.g. Item Group). */
export const FRAPPE_OPERATORS: ReadonlySet<string> = new Set(
  (
    '=,!=,>,<,>=,<=,like,not like,in,not in,is,between,timespan,previous,next,' +
    'ancestors of,descendants of,not ancestors of,not descendants of,descendants of (inclusive)'
  ).split(','),
);

const EXAMPLE = `[["item_group","=","Products"],["disabled","=",0]] or {"item_group":["in",["Products","Spares"]]}`;

/** The conditions of a filter setting (JSON text), or an Error naming the setting and showing valid examples. */
export function parseFrappeFilters(text: string, setting = 'ERPNEXT_ITEM_FILTERS'): FrappeCondition[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new Error(`${setting} is not valid JSON; write Frappe filters such as ${EXAMPLE}.`);
  }
  return normaliseFilters(parsed, setting);
}

/** Validates filters given as a value (list or object form) and returns them in list form. */
export function normaliseFilters(filters: unknown, setting = 'ERPNEXT_ITEM_FILTERS'): FrappeCondition[] {
  const fail = (what: string) => new Error(`${setting}: ${what}. Write Frappe filters such as ${EXAMPLE}.`);
  if (Array.isArray(filters)) return filters.map((condition, index) => checkCondition(condition, index, fail));
  if (typeof filters === 'object' && filters !== null) {
    return Object.entries(filters).map(([field, value], index) =>
      checkCondition(Array.isArray(value) ? [field, value[0], value[1]] : [field, '=', value], index, fail),
    );
  }
  throw fail('must be a JSON list of conditions or an object');
}

function checkCondition(condition: unknown, index: number, fail: (what: string) => Error): FrappeCondition {
  const at = `condition ${index + 1}`;
  if (!Array.isArray(condition) || (condition.length !== 3 && condition.length !== 4)) {
    throw fail(`${at} must be [field, operator, value] or [doctype, field, operator, value]`);
  }
  const names = condition.slice(0, -1) as unknown[];
  if (!names.every((part) => typeof part === 'string' && part.trim() !== '')) {
    throw fail(`${at} needs the field${condition.length === 4 ? ', the doctype' : ''} and the operator as text`);
  }
  const operator = (names[names.length - 1] as string).toLowerCase();
  if (!FRAPPE_OPERATORS.has(operator)) {
    throw fail(`${at} uses the operator ${JSON.stringify(names[names.length - 1])}, which Frappe does not know`);
  }
  return condition as FrappeCondition;
}
