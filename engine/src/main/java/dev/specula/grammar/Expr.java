package dev.specula.grammar;

import java.util.List;

/**
 * A grammar expression over UTF-8 text: what {@link Grammar} holds and
 * {@link AutomatonBuilder} compiles. Trees are immutable; a {@link Call} names a
 * {@link Rule}, the one way to share a subgrammar or to recurse.
 */
sealed interface Expr {

    /** The empty text. */
    Expr EMPTY = new Seq(List.of());

    /** The text itself, as UTF-8. */
    record Literal(String text) implements Expr {
    }

    /** One character from {@code set}, as its UTF-8 bytes. */
    record Chars(CodePointSet set) implements Expr {
    }

    /** The parts one after the other. */
    record Seq(List<Expr> parts) implements Expr {
    }

    /** Any one of the alternatives. */
    record Alt(List<Expr> alternatives) implements Expr {
    }

    /**
     * {@code item (separator item)*}, min to max items ({@code max < 0}: unbounded); zero
     * items is the empty text.
     */
    record Repeat(Expr item, Expr separator, int min, int max) implements Expr {
    }

    /**
     * The members in their order, each present or (when not required) absent, the
     * separator between two present ones: a JSON object's properties. Compiled with its
     * suffixes shared, so n optional members cost O(n), not 2^n.
     */
    record Members(List<Expr> members, List<Boolean> required, Expr separator) implements Expr {
    }

    /** The body of a rule, entered with a stack frame (so rules may recurse). */
    record Call(Rule rule) implements Expr {
    }

    static Expr seq(Expr... parts) {
        return parts.length == 1 ? parts[0] : new Seq(List.of(parts));
    }

    static Expr alt(Expr... alternatives) {
        return alternatives.length == 1 ? alternatives[0] : new Alt(List.of(alternatives));
    }

    static Expr literal(String text) {
        return new Literal(text);
    }

}
