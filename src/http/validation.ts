// Request validation: the two Ajv instances (bodies taken as sent, query/params coerced) and the
// translation of Ajv's errors into the problem's `errors` list.
import { Ajv } from 'ajv';
import formatsPlugin from 'ajv-formats';
import type { FieldError } from '../errors.js';

// ajv-formats is CommonJS with a default export; under NodeNext it arrives wrapped.
const addFormats = ((formatsPlugin as unknown as { default?: typeof formatsPlugin }).default ?? formatsPlugin) as unknown as (ajv: Ajv) => void;

/** Ajv's error as the validators report it. */
export interface AjvError {
  instancePath: string;
  keyword: string;
  message?: string;
  params: Record<string, unknown>;
}

const MAX_FIELD_ERRORS = 20;

export function ajvFor(part: 'body' | 'other'): Ajv {
  // Bodies are taken as sent: no type coercion, no silently dropped fields, so a wrong type or an
  // unknown field is a 400. Query strings and path params arrive as text and are coerced.
  const ajv = new Ajv({
    allErrors: true,
    strict: false,
    useDefaults: true,
    removeAdditional: false,
    coerceTypes: part === 'body' ? false : 'array',
  });
  addFormats(ajv);
  return ajv;
}

/** Field errors name the path and the rule, never the value sent. */
export function fieldErrors(context: string, errors: readonly AjvError[]): FieldError[] {
  return errors.slice(0, MAX_FIELD_ERRORS).map((e) => {
    let path = `${context}${e.instancePath}`;
    let message = e.message ?? 'is invalid';
    if (e.keyword === 'additionalProperties') {
      path += `/${String(e.params.additionalProperty)}`;
      message = 'unknown field';
    } else if (e.keyword === 'required') {
      path += `/${String(e.params.missingProperty)}`;
      message = 'is required';
    }
    return { path, message };
  });
}
