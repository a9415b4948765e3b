package dev.specula.tokenizer;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;

import com.hubspot.jinjava.interpret.JinjavaInterpreter;
import com.hubspot.jinjava.lib.filter.Filter;
import org.jspecify.annotations.Nullable;

/**
 * Python's string methods as chat templates call them (Qwen3 and later:
 * {@code content.split(sep)[-1].lstrip('\n')}, {@code content.startswith(prefix)}).
 * Jinjava resolves methods on Java's String, which has none of these names; the
 * template's calls are rewritten to filters ({@code (x|py_split(sep))}) that keep
 * Python's semantics (split keeps empty parts; strip takes a set of characters).
 */
final class PythonStringMethods {

    /** The methods rewritten, by Python name. */
    static final Set<String> NAMES = Set.of("split", "lstrip", "rstrip", "strip", "startswith", "endswith");

    private static final Pattern CALL = Pattern.compile("\\.(split|lstrip|rstrip|strip|startswith|endswith)\\(");

    private PythonStringMethods() {
    }

    /** The filters to register, one per method ({@code py_split}, ...). */
    static List<Filter> filters() {
        List<Filter> filters = new ArrayList<>();
        for (String name : NAMES) {
            filters.add(new MethodFilter(name));
        }
        return filters;
    }

    /**
     * Rewrites {@code receiver.method(args)} to {@code (receiver|py_method(args))} in one
     * tag, innermost receivers first, where the receiver is a name followed by
     * attributes, subscripts and calls, or a string literal.
     */
    static String rewrite(String tag) {
        String current = tag;
        for (int guard = 0; guard < 64; guard++) {
            java.util.regex.Matcher call = CALL.matcher(current);
            if (!call.find()) {
                return current;
            }
            int dot = call.start();
            int receiverStart = receiverStart(current, dot);
            int argumentsEnd = closing(current, call.end() - 1);
            if (receiverStart < 0 || argumentsEnd < 0) {
                return current; // not a plain receiver: left to Jinjava to report
            }
            String receiver = current.substring(receiverStart, dot);
            String arguments = current.substring(call.end(), argumentsEnd);
            String filter = "(" + receiver + "|py_" + call.group(1) + (arguments.isBlank() ? "" : "(" + arguments + ")")
                    + ")";
            current = current.substring(0, receiverStart) + filter + current.substring(argumentsEnd + 1);
        }
        return current;
    }

    /**
     * Where the postfix expression ending before {@code end} starts: scans back over
     * names, dots, balanced brackets and parentheses, and string literals; -1 when there
     * is none.
     */
    private static int receiverStart(String text, int end) {
        int i = end - 1;
        while (i >= 0) {
            char c = text.charAt(i);
            if (c == ']' || c == ')') {
                i = opening(text, i) - 1;
                if (i < -1) {
                    return -1;
                }
            }
            else if (c == '\'' || c == '"') {
                int open = text.lastIndexOf(c, i - 1);
                if (open < 0) {
                    return -1;
                }
                i = open - 1;
            }
            else if (Character.isLetterOrDigit(c) || c == '_' || c == '.') {
                i--;
            }
            else {
                break;
            }
        }
        return i + 1 < end ? i + 1 : -1;
    }

    /** The index of the bracket that opens the one at {@code close}; -1 if none. */
    private static int opening(String text, int close) {
        int depth = 0;
        for (int i = close; i >= 0; i--) {
            char c = text.charAt(i);
            if (c == ')' || c == ']') {
                depth++;
            }
            else if ((c == '(' || c == '[') && --depth == 0) {
                return i;
            }
        }
        return -1;
    }

    /** The index of the parenthesis that closes the one at {@code open}; -1 if none. */
    private static int closing(String text, int open) {
        int depth = 0;
        char quote = 0;
        for (int i = open; i < text.length(); i++) {
            char c = text.charAt(i);
            if (quote != 0) {
                if (c == '\\') {
                    i++;
                }
                else if (c == quote) {
                    quote = 0;
                }
            }
            else if (c == '\'' || c == '"') {
                quote = c;
            }
            else if (c == '(' || c == '[') {
                depth++;
            }
            else if ((c == ')' || c == ']') && --depth == 0) {
                return i;
            }
        }
        return -1;
    }

    /** {@code py_<method>}: the method of Python's str, on the filtered value's text. */
    static final class MethodFilter implements Filter {

        private final String method;

        MethodFilter(String method) {
            this.method = method;
        }

        @Override
        public String getName() {
            return "py_" + method;
        }

        @Override
        public Object filter(@Nullable Object value, JinjavaInterpreter interpreter, @Nullable String... args) {
            return apply(value == null ? "" : value.toString(), args.length > 0 ? args[0] : null);
        }

        @Override
        public Object filter(@Nullable Object value, JinjavaInterpreter interpreter, @Nullable Object[] args,
                Map<String, @Nullable Object> kwargs) {
            Object argument = args.length > 0 ? args[0] : null;
            return apply(value == null ? "" : value.toString(), argument == null ? null : argument.toString());
        }

        Object apply(String text, @Nullable String argument) {
            return switch (method) {
                case "split" -> split(text, argument);
                case "lstrip" -> strip(text, argument, true, false);
                case "rstrip" -> strip(text, argument, false, true);
                case "strip" -> strip(text, argument, true, true);
                case "startswith" -> argument != null && text.startsWith(argument);
                case "endswith" -> argument != null && text.endsWith(argument);
                default -> throw new IllegalStateException(method);
            };
        }

        /** Python's split: empty parts kept; without a separator, runs of whitespace. */
        private static List<String> split(String text, @Nullable String separator) {
            if (separator == null) {
                String stripped = text.strip();
                return stripped.isEmpty() ? List.of() : List.of(stripped.split("\\s+"));
            }
            if (separator.isEmpty()) {
                throw new ChatTemplateException("Chat template called split('') : empty separator");
            }
            return List.of(text.split(Pattern.quote(separator), -1));
        }

        /** Python's strip family: {@code characters} a set; null = whitespace. */
        private static String strip(String text, @Nullable String characters, boolean left, boolean right) {
            int start = 0;
            int end = text.length();
            while (left && start < end && strips(text.charAt(start), characters)) {
                start++;
            }
            while (right && end > start && strips(text.charAt(end - 1), characters)) {
                end--;
            }
            return text.substring(start, end);
        }

        private static boolean strips(char c, @Nullable String characters) {
            return characters == null ? Character.isWhitespace(c) : characters.indexOf(c) >= 0;
        }

    }

}
