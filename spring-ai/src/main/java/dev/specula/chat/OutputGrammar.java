package dev.specula.chat;

import org.jspecify.annotations.Nullable;

import dev.specula.grammar.Grammar;
import dev.specula.grammar.UnsupportedSchemaException;
import dev.specula.request.InvalidRequestException;

/**
 * The grammar a request's output must match, from its options and tools:
 * <ul>
 * <li>a call required ({@code toolChoice} {@code required} or a tool's name): the calls
 * of the offered tools in the model's tool-call syntax, nothing else;</li>
 * <li>tools offered and an {@code outputSchema} or {@code jsonMode}: either calls or the
 * JSON answer;</li>
 * <li>an {@code outputSchema}: JSON of that schema; {@code jsonMode}: any JSON
 * object;</li>
 * <li>otherwise none: the output is free text (and read for calls when tools are
 * offered).</li>
 * </ul>
 */
final class OutputGrammar {

    private OutputGrammar() {
    }

    /**
     * The grammar, or null for free text.
     * @throws InvalidRequestException naming {@code outputSchema} or {@code tools} for a
     * schema the grammar engine cannot enforce
     */
    static @Nullable Grammar of(SpeculaChatOptions options, ToolPlan tools) {
        if (tools.callRequired()) {
            return calls(tools);
        }
        Grammar answer = answer(options);
        if (answer != null && tools.readsCalls()) {
            return Grammar.anyOf(calls(tools), answer);
        }
        return answer;
    }

    /** The JSON answer's grammar, or null when the answer is free text. */
    static @Nullable Grammar answer(SpeculaChatOptions options) {
        if (options.getOutputSchema() != null) {
            try {
                return Grammar.jsonSchema(options.getOutputSchema());
            }
            catch (UnsupportedSchemaException ex) {
                throw new InvalidRequestException("outputSchema", ex.getCode(), ex.getMessage(), ex);
            }
        }
        return Boolean.TRUE.equals(options.getJsonMode()) ? Grammar.jsonObject() : null;
    }

    private static Grammar calls(ToolPlan tools) {
        return tools.syntax().callsGrammar(tools.offered(), tools.parallel());
    }

}
