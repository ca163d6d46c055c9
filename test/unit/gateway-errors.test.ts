// Every error code the gateway can answer with is documented in the README's gateway section.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { HTTP_STATUS } from "../../gateway/errors.js";
import { ROOT } from "../harness/data.js";

test("gateway errors - the README lists every code with its HTTP status", () => {
  const readme = readFileSync(`${ROOT}/README.md`, "utf8");
  for (const [code, status] of Object.entries(HTTP_STATUS)) {
    assert.match(readme, new RegExp(`\\| \`${code}\` \\| ${status} \\|`), `README documents ${code} → ${status}`);
  }
});
