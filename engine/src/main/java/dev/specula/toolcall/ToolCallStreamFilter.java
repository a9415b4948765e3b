package dev.specula.toolcall;

/**
 * One streamed output through a {@link ToolCallFormat}: {@link #accept} returns the text
 * safe to show now and holds back whatever could start a call (a partial
 * {@code <tool_call>}, for Llama a reply that opens with a brace, trailing whitespace);
 * {@link #finish} parses what was held. The text emitted plus the finished content equal
 * {@link ToolCallFormat#parse}'s content of the whole output, so call markup never
 * reaches the stream as text. Leading whitespace is dropped, as the parse trims it.
 * Thread-safe; meant for one producer.
 */
public final class ToolCallStreamFilter {

    private final ToolCallFormat format;

    private final StringBuilder output = new StringBuilder();

    private final StringBuilder emitted = new StringBuilder();

    /** Index in {@link #output} up to which text was emitted (or skipped as leading). */
    private int position;

    private boolean finished;

    ToolCallStreamFilter(ToolCallFormat format) {
        this.format = format;
    }

    /**
     * Adds a piece of output; returns the text that can be shown now (possibly empty).
     * @throws IllegalStateException after {@link #finish}
     */
    public synchronized String accept(String piece) {
        if (finished) {
            throw new IllegalStateException("The stream filter has finished");
        }
        output.append(piece);
        int limit = format.safeLength(output, position);
        while (limit > position && (Character.isWhitespace(output.charAt(limit - 1))
                || Character.isHighSurrogate(output.charAt(limit - 1)))) {
            limit--;
        }
        int start = position;
        if (emitted.isEmpty()) {
            while (start < limit && Character.isWhitespace(output.charAt(start))) {
                start++;
            }
        }
        if (start >= limit) {
            return "";
        }
        String text = output.substring(start, limit);
        emitted.append(text);
        position = limit;
        return text;
    }

    /**
     * Ends the output: the text not emitted yet (the content after what was emitted) and
     * the calls.
     */
    public synchronized ParsedOutput finish() {
        finished = true;
        ParsedOutput parsed = format.parse(output.toString());
        String content = parsed.content();
        int common = 0;
        while (common < emitted.length() && common < content.length()
                && emitted.charAt(common) == content.charAt(common)) {
            common++;
        }
        return new ParsedOutput(content.substring(common), parsed.toolCalls());
    }

}
