import { describe, expect, it } from "vitest";
import { createBatchedWriter } from "../src/logger.js";

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

describe("createBatchedWriter", () => {
  it("writes the lines of one turn of the event loop as one chunk, at the end of that turn", async () => {
    const chunks: string[] = [];
    const output = createBatchedWriter((chunk) => chunks.push(chunk));
    output.write("a\n");
    output.write("b\n");
    expect(chunks).toEqual([]);
    await nextTurn();
    expect(chunks).toEqual(["a\nb\n"]);
    output.write("c\n");
    await nextTurn();
    expect(chunks).toEqual(["a\nb\n", "c\n"]);
  });

  it("writes what is pending at once on flush, and nothing twice", async () => {
    const chunks: string[] = [];
    const output = createBatchedWriter((chunk) => chunks.push(chunk));
    output.write("a\n");
    output.flush();
    expect(chunks).toEqual(["a\n"]);
    await nextTurn();
    output.flush();
    expect(chunks).toEqual(["a\n"]);
  });
});
