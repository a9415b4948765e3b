package dev.specula.tokenizer;

import java.math.BigDecimal;
import java.math.MathContext;
import java.math.RoundingMode;
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
            out.append(pythonFloat(((Number) value).doubleValue()));
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

    /**
     * Python's {@code repr(float)}: the shortest digits, positional notation for decimal
     * exponents from -4 to 15 ({@code 100.0}, {@code 0.0001}), scientific otherwise
     * ({@code 1e-05}, {@code 1e+16}).
     */
    static String pythonFloat(double number) {
        if (Double.isNaN(number)) {
            return "NaN";
        }
        if (Double.isInfinite(number)) {
            return number > 0 ? "Infinity" : "-Infinity";
        }
        if (number == 0) {
            return 1 / number < 0 ? "-0.0" : "0.0";
        }
        BigDecimal exact = new BigDecimal(Math.abs(number));
        BigDecimal shortest = exact;
        for (int precision = 1; precision <= 17; precision++) { // the fewest digits that
                                                                // read back
            BigDecimal rounded = exact.round(new MathContext(precision, RoundingMode.HALF_EVEN));
            if (rounded.doubleValue() == Math.abs(number)) {
                shortest = rounded;
                break;
            }
        }
        shortest = shortest.stripTrailingZeros();
        String digits = shortest.unscaledValue().toString();
        int exponent = digits.length() - 1 - shortest.scale();
        StringBuilder text = new StringBuilder(number < 0 ? "-" : "");
        if (exponent < -4 || exponent >= 16) {
            text.append(digits.charAt(0));
            if (digits.length() > 1) {
                text.append('.').append(digits, 1, digits.length());
            }
            text.append('e').append(exponent < 0 ? '-' : '+');
            text.append(Math.abs(exponent) < 10 ? "0" : "").append(Math.abs(exponent));
        }
        else if (exponent < 0) {
            text.append("0.").append("0".repeat(-exponent - 1)).append(digits);
        }
        else if (digits.length() <= exponent + 1) {
            text.append(digits).append("0".repeat(exponent + 1 - digits.length())).append(".0");
        }
        else {
            text.append(digits, 0, exponent + 1).append('.').append(digits, exponent + 1, digits.length());
        }
        return text.toString();
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
