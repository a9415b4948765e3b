package dev.specula.grammar;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import org.jspecify.annotations.Nullable;

/**
 * A regular expression subset, parsed to an {@link Expr}: literals and escapes,
 * {@code .}, classes ({@code [a-z0-9_]}, negated {@code [^...]}), {@code \d \w \s} and
 * their negations, groups ({@code (...)}, {@code (?:...)}), alternation, the quantifiers
 * {@code * + ? {n} {n,} {n,m}} (bounds up to {@value #MAX_BOUND}), and anchors {@code ^}
 * and {@code $} at the very ends (the pattern always matches the whole string). Anything
 * else (lookaround, backreferences, lazy quantifiers, word boundaries, named groups) is
 * refused by name.
 *
 * <p>
 * Inside a JSON string ({@code jsonString}), each character class becomes the JSON text
 * that writes its characters (escaped where JSON needs it).
 */
final class PatternParser {

    static final int MAX_BOUND = 1000;

    private static final CodePointSet DIGITS = CodePointSet.of('0', '9');

    private static final CodePointSet WORD = CodePointSet.of('0', '9', 'a', 'z', 'A', 'Z', '_', '_');

    private static final CodePointSet SPACE = CodePointSet.of(' ', ' ', '\t', '\r', 0x0B, 0x0C, 0xA0, 0xA0, 0x1680,
            0x1680, 0x2000, 0x200A, 0x2028, 0x2029, 0x202F, 0x202F, 0x205F, 0x205F, 0x3000, 0x3000, 0xFEFF, 0xFEFF);

    /** {@code .}: all but line terminators. */
    private static final CodePointSet DOT = CodePointSet.ALL
        .minus(CodePointSet.of('\n', '\n', '\r', '\r', 0x2028, 0x2029));

    private final int[] pattern;

    private final boolean jsonString;

    private final String pointer;

    private int at;

    private PatternParser(String pattern, boolean jsonString, String pointer) {
        this.pattern = pattern.codePoints().toArray();
        this.jsonString = jsonString;
        this.pointer = pointer;
    }

    /**
     * The text {@code pattern} matches whole; {@code pointer}: the schema's JSON pointer,
     * for errors.
     */
    static Expr parse(String pattern, boolean jsonString, String pointer) {
        PatternParser parser = new PatternParser(pattern, jsonString, pointer);
        int end = parser.pattern.length;
        if (end > 0 && parser.pattern[end - 1] == '$' && (end < 2 || parser.pattern[end - 2] != '\\')) {
            end--;
        }
        int[] body = Arrays.copyOf(parser.pattern, end);
        int start = (body.length > 0 && body[0] == '^') ? 1 : 0;
        PatternParser inner = new PatternParser(new String(body, start, body.length - start), jsonString, pointer);
        Expr expr = inner.alternation();
        if (inner.at < inner.pattern.length) {
            throw inner.refuse("unbalanced ')'");
        }
        return expr;
    }

    private UnsupportedSchemaException refuse(String what) {
        return new UnsupportedSchemaException(pointer,
                "Unsupported JSON Schema pattern at " + display(pointer) + ": " + what + " at character " + at
                        + " (supported: literals, escapes, ., classes, \\d \\w \\s, groups, |, "
                        + "* + ? {n} {n,} {n,m}, ^ and $ at the ends)");
    }

    static String display(String pointer) {
        return pointer.isEmpty() ? "/" : pointer;
    }

    private boolean more() {
        return at < pattern.length;
    }

    private int peek() {
        return pattern[at];
    }

    private Expr alternation() {
        List<Expr> alternatives = new ArrayList<>();
        alternatives.add(concatenation());
        while (more() && peek() == '|') {
            at++;
            alternatives.add(concatenation());
        }
        return (alternatives.size() == 1) ? alternatives.get(0) : new Expr.Alt(alternatives);
    }

    private Expr concatenation() {
        List<Expr> parts = new ArrayList<>();
        while (more() && peek() != '|' && peek() != ')') {
            parts.add(quantified(atom()));
        }
        return (parts.size() == 1) ? parts.get(0) : new Expr.Seq(parts);
    }

    private Expr quantified(Expr atom) {
        if (!more()) {
            return atom;
        }
        int min;
        int max;
        int c = peek();
        if (c == '*') {
            min = 0;
            max = -1;
            at++;
        }
        else if (c == '+') {
            min = 1;
            max = -1;
            at++;
        }
        else if (c == '?') {
            min = 0;
            max = 1;
            at++;
        }
        else if (c == '{') {
            int[] bounds = bounds();
            if (bounds == null) {
                return atom;
            }
            min = bounds[0];
            max = bounds[1];
        }
        else {
            return atom;
        }
        if (more() && (peek() == '?' || peek() == '+')) {
            throw refuse("lazy or possessive quantifier");
        }
        if (more() && peek() == '*') {
            throw refuse("a quantifier after a quantifier");
        }
        return new Expr.Repeat(atom, Expr.EMPTY, min, max);
    }

    /**
     * At a {@code {n}}, {@code {n,}} or {@code {n,m}}: its bounds, moving past it; else
     * null.
     */
    private int @Nullable [] bounds() {
        int i = at + 1;
        int min = 0;
        int digits = 0;
        while (i < pattern.length && pattern[i] >= '0' && pattern[i] <= '9' && digits < 9) {
            min = min * 10 + (pattern[i++] - '0');
            digits++;
        }
        if (digits == 0 || i >= pattern.length) {
            return null;
        }
        int max = min;
        if (pattern[i] == ',') {
            i++;
            if (i < pattern.length && pattern[i] == '}') {
                max = -1;
            }
            else {
                max = 0;
                digits = 0;
                while (i < pattern.length && pattern[i] >= '0' && pattern[i] <= '9' && digits < 9) {
                    max = max * 10 + (pattern[i++] - '0');
                    digits++;
                }
                if (digits == 0) {
                    return null;
                }
            }
        }
        if (i >= pattern.length || pattern[i] != '}') {
            return null;
        }
        if (min > MAX_BOUND || max > MAX_BOUND) {
            throw refuse("a repeat bound above " + MAX_BOUND);
        }
        if (max >= 0 && max < min) {
            throw refuse("a repeat {n,m} with m < n");
        }
        at = i + 1;
        return new int[] { min, max };
    }

    private Expr atom() {
        int c = pattern[at++];
        switch (c) {
            case '(':
                if (more() && peek() == '?') {
                    if (at + 1 < pattern.length && pattern[at + 1] == ':') {
                        at += 2;
                    }
                    else {
                        throw refuse("lookaround or named group");
                    }
                }
                Expr group = alternation();
                if (!more() || peek() != ')') {
                    throw refuse("unclosed group");
                }
                at++;
                return group;
            case '[':
                return chars(characterClass());
            case '.':
                return chars(DOT);
            case '\\':
                return escape();
            case '^':
            case '$':
                throw refuse("an anchor not at the ends");
            case '*':
            case '+':
            case '?':
                throw refuse("a quantifier with nothing to repeat");
            default:
                return chars(CodePointSet.single(c));
        }
    }

    private Expr chars(CodePointSet set) {
        return jsonString ? JsonGrammars.stringChar(set) : new Expr.Chars(set);
    }

    private Expr escape() {
        if (!more()) {
            throw refuse("a trailing backslash");
        }
        CodePointSet set = classEscape();
        return chars(set);
    }

    /** After a backslash: the characters it stands for. */
    private CodePointSet classEscape() {
        int c = pattern[at++];
        switch (c) {
            case 'd':
                return DIGITS;
            case 'D':
                return DIGITS.complement();
            case 'w':
                return WORD;
            case 'W':
                return WORD.complement();
            case 's':
                return SPACE;
            case 'S':
                return SPACE.complement();
            case 'n':
                return CodePointSet.single('\n');
            case 'r':
                return CodePointSet.single('\r');
            case 't':
                return CodePointSet.single('\t');
            case 'f':
                return CodePointSet.single('\f');
            case 'v':
                return CodePointSet.single(0x0B);
            case 'u':
                return CodePointSet.single(hex(4));
            case 'x':
                return CodePointSet.single(hex(2));
            default:
                if (Character.isLetterOrDigit(c)) {
                    at--;
                    throw refuse("the escape \\" + Character.toString(c));
                }
                return CodePointSet.single(c);
        }
    }

    private int hex(int digits) {
        if (at + digits > pattern.length) {
            throw refuse("a short hex escape");
        }
        int value = 0;
        for (int i = 0; i < digits; i++) {
            int digit = Character.digit(pattern[at++], 16);
            if (digit < 0) {
                throw refuse("a bad hex escape");
            }
            value = value * 16 + digit;
        }
        return value;
    }

    /** After {@code [}: the class's characters, moving past {@code ]}. */
    private CodePointSet characterClass() {
        boolean negated = more() && peek() == '^';
        if (negated) {
            at++;
        }
        CodePointSet set = CodePointSet.EMPTY;
        boolean first = true;
        while (true) {
            if (!more()) {
                throw refuse("an unclosed character class");
            }
            int c = pattern[at];
            if (c == ']' && !first) {
                at++;
                break;
            }
            first = false;
            CodePointSet item = classAtom();
            if (more() && peek() == '-' && at + 1 < pattern.length && pattern[at + 1] != ']') {
                int lo = single(item);
                at++;
                int hi = single(classAtom());
                if (hi < lo) {
                    throw refuse("a class range out of order");
                }
                set = set.union(CodePointSet.of(lo, hi));
            }
            else {
                set = set.union(item);
            }
        }
        return negated ? set.complement() : set;
    }

    private CodePointSet classAtom() {
        int c = pattern[at++];
        if (c == '\\') {
            if (!more()) {
                throw refuse("a trailing backslash");
            }
            if (peek() == 'b') {
                at++;
                return CodePointSet.single('\b');
            }
            return classEscape();
        }
        if (c == '[') {
            throw refuse("a nested class");
        }
        return CodePointSet.single(c);
    }

    private int single(CodePointSet set) {
        if (set.rangeCount() != 1 || set.lo(0) != set.hi(0)) {
            throw refuse("a class range bounded by a class escape");
        }
        return set.lo(0);
    }

}
