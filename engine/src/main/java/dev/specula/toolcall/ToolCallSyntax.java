package dev.specula.toolcall;

/**
 * How a format writes calls, as plain data for a grammar that forces them. Each call is a
 * JSON object {@code {"name": ..., <argumentsKey>: {...}}}. Without {@code jsonArray}
 * every call is written {@code opening + object + closing}, parallel calls joined by
 * {@code separator}; with it the calls form one JSON array,
 * {@code opening + "[" + objects joined by separator + "]" + closing}.
 *
 * @param opening text before a call (or before the array); may be empty
 * @param closing text after a call (or after the array); may be empty
 * @param separator text between parallel calls
 * @param argumentsKey the key of the arguments object: {@code arguments} or
 * {@code parameters}
 * @param jsonArray whether the calls are wrapped in one JSON array
 */
public record ToolCallSyntax(String opening, String closing, String separator, String argumentsKey, boolean jsonArray) {
}
