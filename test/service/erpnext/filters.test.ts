// ERPNEXT_ITEM_FILTERS parsing: the forms Frappe accepts come out as a list of conditions; anything else stops with
// a message that names the setting and shows a valid example.
import { describe, expect, it } from 'vitest';
import { normaliseFilters, parseFrappeFilters } from '../../../service/src/erpnext/filters.js';

describe('parseFrappeFilters', () => {
  it('keeps list conditions of three or four values', () => {
    expect(
      parseFrappeFilters('[["item_group","=","Products"],["Item","disabled","=",0],["brand","IS","set"]]'),
    ).toEqual([
      ['item_group', '=', 'Products'],
      ['Item', 'disabled', '=', 0],
      ['brand', 'IS', 'set'],
    ]);
  });

  it('turns the object form into conditions, as make_filter_tuple does', () => {
    expect(parseFrappeFilters('{"item_group":["in",["A","B"]],"disabled":0}')).toEqual([
      ['item_group', 'in', ['A', 'B']],
      ['disabled', '=', 0],
    ]);
    expect(parseFrappeFilters('[]')).toEqual([]);
  });

  it('refuses what Frappe would refuse or misread, naming the setting and an example', () => {
    const cases: [string, RegExp][] = [
      ['item_group=Products', /ERPNEXT_ITEM_FILTERS is not valid JSON; write Frappe filters such as \[\["item_group"/],
      ['"Products"', /must be a JSON list of conditions or an object/],
      ['[["item_group","Products"]]', /condition 1 must be \[field, operator, value\]/],
      ['[["item_group","=","x"],"disabled = 0"]', /condition 2 must be/],
      ['[["item_group","equals","x"]]', /condition 1 uses the operator "equals", which Frappe does not know/],
      ['[["","=","x"]]', /condition 1 needs the field and the operator as text/],
      ['{"brand":["~","x"]}', /uses the operator "~"/],
    ];
    for (const [text, message] of cases) expect(() => parseFrappeFilters(text), text).toThrow(message);
    expect(() => normaliseFilters(42, 'MY_SETTING')).toThrow(/^MY_SETTING: /);
  });
});
