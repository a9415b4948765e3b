package dev.specula.tokenizer;

import java.util.Collection;
import java.util.Iterator;
import java.util.Map;

import org.jspecify.annotations.Nullable;

/**
 * {@code json.dumps(value, ensure_ascii=False, indent=indent)} as Python writes it, which
 * is what the {@code tojson} filter of transformers' chat templates produces: separators
 * {@code ", "} and {@code ": "} (or {@code ","} and newlines with an indent), non-ASCII
 * kept, keys in insertion order.
 */
final class PythonJson {

    private PythonJson() {
    }

    static String dumps(@Nullable Object value, @Nullable Integer indent) {
        StringBuilder out = new StringBuilder();
        write(out, value, indent, 0);
        return out.toString();
    }

    private static void write(StringBuilder out, @Nullable Object value, @Nullable Integer indent, int depth) {
        if (value == null) {
            out.append("null");
        }
        else if (value instanceof CharSequence text) {
            writeString(out, text.toString());
        }
        else if (value instanceof Boolean bool) {
            out.append(bool ? "true" : "false");
        }
        else if (value instanceof Double || value instanceof Float) {
            double number = ((Number) value).doubleValue();
            out.append(number == Math.rint(number) && !Double.isInfinite(number) ? String.format("%.1f", number)
                    : Double.toString(number));
        }
        else if (value instanceof Number number) {
            out.append(number);
        }
        else if (value instanceof Map<?, ?> map) {
            writeContainer(out, '{', '}', map.entrySet().iterator(), map.isEmpty(), indent, depth, true);
        }
        else if (value instanceof Collection<?> list) {
            writeContainer(out, '[', ']', list.iterator(), list.isEmpty(), indent, depth, false);
        }
        else if (value instanceof Object[] array) {
            writeContainer(out, '[', ']', java.util.Arrays.asList(array).iterator(), array.length == 0, indent, depth,
                    false);
        }
        else {
            writeString(out, value.toString());
        }
    }

    private static void writeContainer(StringBuilder out, char open, char close, Iterator<?> items, boolean empty,
            @Nullable Integer indent, int depth, boolean entries) {
        out.append(open);
        if (empty) {
            out.append(close);
            return;
        }
        boolean first = true;
        while (items.hasNext()) {
            Object item = items.next();
            if (!first) {
                out.append(indent == null ? ", " : ",");
            }
            first = false;
            if (indent != null) {
                out.append('\n').append(" ".repeat(indent * (depth + 1)));
            }
            if (entries) {
                Map.Entry<?, ?> entry = (Map.Entry<?, ?>) item;
                writeString(out, String.valueOf(entry.getKey()));
                out.append(": ");
                write(out, entry.getValue(), indent, depth + 1);
            }
            else {
                write(out, item, indent, depth + 1);
            }
        }
        if (indent != null) {
            out.append('\n').append(" ".repeat(indent * depth));
        }
        out.append(close);
    }

    private static void writeString(StringBuilder out, String text) {
        out.append('"');
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            switch (c) {
                case '"' -> out.append("\\\"");
                case '\\' -> out.append("\\\\");
                case '\n' -> out.append("\\n");
                case '\r' -> out.append("\\r");
                case '\t' -> out.append("\\t");
                case '\b' -> out.append("\\b");
                case '\f' -> out.append("\\f");
                default -> {
                    if (c < 0x20) {
                        out.append(String.format("\\u%04x", (int) c));
                    }
                    else {
                        out.append(c);
                    }
                }
            }
        }
        out.append('"');
    }

}
