// A typebox validator that also works under a Content-Security-Policy without 'unsafe-eval' (the
// web participant's workers): TypeCompiler generates code with `new Function`, which such a page
// refuses, so there we fall back to typebox's interpreting checker (slower, same answers).
import type { Static, TSchema } from '@sinclair/typebox';
import { TypeCompiler, type ValueErrorIterator } from '@sinclair/typebox/compiler';
import { Value } from '@sinclair/typebox/value';

export interface SchemaChecker<T extends TSchema> {
  Check(value: unknown): value is Static<T>;
  Errors(value: unknown): ValueErrorIterator;
}

export function compileSchema<T extends TSchema>(schema: T): SchemaChecker<T> {
  try {
    return TypeCompiler.Compile(schema);
  } catch {
    return {
      Check: (value: unknown): value is Static<T> => Value.Check(schema, value),
      Errors: (value: unknown) => Value.Errors(schema, value),
    };
  }
}
