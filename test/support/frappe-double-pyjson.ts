// Python's json.dumps(data) with its defaults (separators ", " and ": ", ensure_ascii=True), byte for byte: Frappe's
// webhook sends and signs exactly that text (frappe/integrations/doctype/webhook/webhook.py, enqueue_webhook and
// get_webhook_headers). JavaScript has one number type, Python two: a value wrapped in PyFloat is written as Python
// writes a float (0.0, 1e-05, 1e+16), a plain integral number as an int. The signature test checks the output
// against /usr/bin/python3.
export class PyFloat {
  constructor(readonly value: number) {}
}

export const pyFloat = (value: number) => new PyFloat(value);

export type PyJson = null | boolean | number | string | PyFloat | PyJson[] | { [key: string]: PyJson };

/** json.dumps(value) as CPython 3 writes it. */
export function pythonJsonDumps(value: PyJson): string {
  if (value === null) return 'null';
  if (value === true) return 'true';
  if (value === false) return 'false';
  if (value instanceof PyFloat) return floatRepr(value.value);
  if (typeof value === 'number') return Number.isInteger(value) ? intRepr(value) : floatRepr(value);
  if (typeof value === 'string') return encodeString(value);
  if (Array.isArray(value)) return `[${value.map(pythonJsonDumps).join(', ')}]`;
  return `{${Object.entries(value)
    .map(([key, item]) => `${encodeString(key)}: ${pythonJsonDumps(item)}`)
    .join(', ')}}`;
}

function intRepr(value: number): string {
  if (!Number.isSafeInteger(value)) throw new Error(`${value} is not a safe integer; pass it as a PyFloat or a string`);
  return String(value);
}

// json.encoder.py: ESCAPE_ASCII = r'([\\"]|[^\ -~])'; short escapes for these, \uXXXX (lowercase) for the rest.
const SHORT_ESCAPES: Record<string, string> = {
  '\\': '\\\\',
  '"': '\\"',
  '\b': '\\b',
  '\f': '\\f',
  '\n': '\\n',
  '\r': '\\r',
  '\t': '\\t',
};

function encodeString(text: string): string {
  let out = '"';
  // Iterating UTF-16 code units writes astral characters as their surrogate pair, as Python does.
  for (let index = 0; index < text.length; index++) {
    const char = text[index];
    const code = text.charCodeAt(index);
    if (SHORT_ESCAPES[char]) out += SHORT_ESCAPES[char];
    else if (code < 0x20 || code > 0x7e) out += `\\u${code.toString(16).padStart(4, '0')}`;
    else out += char;
  }
  return `${out}"`;
}

/** float.__repr__ (CPython's 'r' format): shortest round-trip digits, exponent form below 1e-4 and from 1e16. */
function floatRepr(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return 'Infinity';
  if (value === -Infinity) return '-Infinity';
  const sign = value < 0 || Object.is(value, -0) ? '-' : '';
  // toExponential() without an argument gives the same shortest round-trip digits as Python's repr.
  const [mantissa, exponentText] = Math.abs(value).toExponential().split('e');
  const digits = mantissa.replace('.', '');
  const exponent = Number(exponentText);
  if (exponent < -4 || exponent >= 16) {
    const fraction = digits.length > 1 ? `.${digits.slice(1)}` : '';
    const magnitude = String(Math.abs(exponent)).padStart(2, '0');
    return `${sign}${digits[0]}${fraction}e${exponent < 0 ? '-' : '+'}${magnitude}`;
  }
  if (exponent < 0) return `${sign}0.${'0'.repeat(-exponent - 1)}${digits}`;
  const whole = digits.slice(0, exponent + 1).padEnd(exponent + 1, '0');
  const fraction = digits.slice(exponent + 1) || '0';
  return `${sign}${whole}.${fraction}`;
}
