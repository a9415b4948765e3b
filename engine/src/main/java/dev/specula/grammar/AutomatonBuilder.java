package dev.specula.grammar;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;

/**
 * Compiles an {@link Expr} to an {@link Automaton}, backwards:
 * {@code compile(expr, next)} builds the nodes of {@code expr} leading on to node
 * {@code next} and returns its first node, so an expression's continuation is shared
 * rather than copied (a JSON object's optional members, a repeat's tail). Each
 * {@link Rule} is compiled once, its body ending in the one RETURN node.
 */
final class AutomatonBuilder {

    /** A larger grammar is refused: a schema with huge counted repeats. */
    static final int MAX_NODES = 2_000_000;

    /** A repeated item bigger than this is compiled once as a rule, then called. */
    private static final int INLINE_REPEAT_NODES = 4096;

    private final List<Node> nodes = new ArrayList<>();

    private final Map<Rule, Integer> ruleStarts = new IdentityHashMap<>();

    /** Special tokens by their content text: a literal may contain them. */
    private final Map<String, int[]> specialTokens;

    private final int returnNode;

    /** A node under construction: kind, byte edges or targets, special edges. */
    private static final class Node {

        final byte kind;

        final List<int[]> edges = new ArrayList<>();

        final List<int[]> specials = new ArrayList<>();

        Node(byte kind) {
            this.kind = kind;
        }

    }

    private AutomatonBuilder(Map<String, int[]> specialTokens) {
        this.specialTokens = specialTokens;
        this.returnNode = add(Automaton.RETURN);
    }

    /**
     * The automaton of {@code root}, its literals also taking the special tokens whose
     * content they contain ({@code specialTokens}: content text to token ids).
     */
    static Automaton build(Expr root, Map<String, int[]> specialTokens) {
        AutomatonBuilder builder = new AutomatonBuilder(specialTokens);
        int start = builder.call(new Rule("root", root), -1);
        return builder.freeze(start);
    }

    private int add(byte kind) {
        if (nodes.size() >= MAX_NODES) {
            throw new UnsupportedSchemaException("",
                    "The grammar needs more than " + MAX_NODES + " automaton nodes (counted repeats too large)");
        }
        nodes.add(new Node(kind));
        return nodes.size() - 1;
    }

    private int byteNode(int lo, int hi, int target) {
        int node = add(Automaton.BYTES);
        nodes.get(node).edges.add(new int[] { lo, hi, target });
        return node;
    }

    private int split(int... targets) {
        int node = add(Automaton.SPLIT);
        for (int target : targets) {
            nodes.get(node).edges.add(new int[] { target });
        }
        return node;
    }

    /**
     * Node {@code call} with the rule's start and the return node; -1: the root's start.
     */
    private int call(Rule rule, int next) {
        Integer start = ruleStarts.get(rule);
        if (start == null) {
            int entry = add(Automaton.SPLIT);
            ruleStarts.put(rule, entry);
            int body = compile(rule.body(), returnNode);
            nodes.get(entry).edges.add(new int[] { body });
            start = entry;
        }
        if (next < 0) {
            return start;
        }
        int node = add(Automaton.CALL);
        nodes.get(node).edges.add(new int[] { start });
        nodes.get(node).edges.add(new int[] { next });
        return node;
    }

    private int compile(Expr expr, int next) {
        if (expr instanceof Expr.Literal literal) {
            return literal(literal.text(), next);
        }
        if (expr instanceof Expr.Chars chars) {
            return chars(chars.set(), next);
        }
        if (expr instanceof Expr.Seq seq) {
            int node = next;
            for (int i = seq.parts().size() - 1; i >= 0; i--) {
                node = compile(seq.parts().get(i), node);
            }
            return node;
        }
        if (expr instanceof Expr.Alt alt) {
            int[] targets = new int[alt.alternatives().size()];
            for (int i = 0; i < targets.length; i++) {
                targets[i] = compile(alt.alternatives().get(i), next);
            }
            return (targets.length == 1) ? targets[0] : split(targets);
        }
        if (expr instanceof Expr.Repeat repeat) {
            return repeat(repeat, next);
        }
        if (expr instanceof Expr.Members members) {
            return members(members, next);
        }
        if (expr instanceof Expr.Call call) {
            return call(call.rule(), next);
        }
        throw new IllegalStateException("Unknown expression " + expr);
    }

    /**
     * The literal's bytes as a chain; where a special token's content starts in it, that
     * node also takes the token whole, to the node after its content.
     */
    private int literal(String text, int next) {
        byte[] bytes = text.getBytes(StandardCharsets.UTF_8);
        int[] chain = new int[bytes.length + 1];
        chain[bytes.length] = next;
        for (int i = bytes.length - 1; i >= 0; i--) {
            chain[i] = byteNode(bytes[i] & 0xFF, bytes[i] & 0xFF, chain[i + 1]);
        }
        for (Map.Entry<String, int[]> special : specialTokens.entrySet()) {
            byte[] content = special.getKey().getBytes(StandardCharsets.UTF_8);
            for (int at = 0; content.length > 0 && at + content.length <= bytes.length; at++) {
                if (startsWith(bytes, at, content)) {
                    for (int token : special.getValue()) {
                        nodes.get(chain[at]).specials.add(new int[] { token, chain[at + content.length] });
                    }
                }
            }
        }
        return chain[0];
    }

    private static boolean startsWith(byte[] bytes, int at, byte[] prefix) {
        for (int i = 0; i < prefix.length; i++) {
            if (bytes[at + i] != prefix[i]) {
                return false;
            }
        }
        return true;
    }

    /**
     * One character of the set: a first node with an edge per leading byte range, the
     * continuation ranges as chains shared by their text.
     */
    private int chars(CodePointSet set, int next) {
        List<int[]> sequences = Utf8Sequences.of(set);
        if (sequences.isEmpty()) {
            // nothing matches: a node without edges
            return add(Automaton.BYTES);
        }
        int first = add(Automaton.BYTES);
        Map<String, Integer> tails = new HashMap<>();
        for (int[] sequence : sequences) {
            int node = next;
            StringBuilder tail = new StringBuilder();
            for (int i = sequence.length - 2; i >= 2; i -= 2) {
                tail.insert(0, sequence[i] + "-" + sequence[i + 1] + ",");
                Integer shared = tails.get(tail.toString());
                if (shared == null) {
                    shared = byteNode(sequence[i], sequence[i + 1], node);
                    tails.put(tail.toString(), shared);
                }
                node = shared;
            }
            nodes.get(first).edges.add(new int[] { sequence[0], sequence[1], node });
        }
        return first;
    }

    private int repeat(Expr.Repeat repeat, int next) {
        int min = repeat.min();
        int max = repeat.max();
        if (max == 0) {
            return next;
        }
        Expr item = repeat.item();
        Expr separator = repeat.separator();
        int copies = (max < 0) ? min + 1 : max;
        if (copies > 2 && (long) size(item) * copies > INLINE_REPEAT_NODES) {
            item = new Expr.Call(new Rule("item", item));
        }
        if (copies > 2 && (long) size(separator) * copies > INLINE_REPEAT_NODES) {
            separator = new Expr.Call(new Rule("separator", separator));
        }
        // after[k]: the node reached after k items
        int last = (max < 0) ? Math.max(min, 1) : max;
        int after;
        if (max < 0) {
            int loop = add(Automaton.SPLIT);
            int again = compile(separator, compile(item, loop));
            nodes.get(loop).edges.add(new int[] { next });
            nodes.get(loop).edges.add(new int[] { again });
            after = loop;
        }
        else {
            after = next;
        }
        for (int k = last - 1; k >= 1; k--) {
            int more = compile(separator, compile(item, after));
            after = (k >= min) ? split(next, more) : more;
        }
        int first = compile(item, after);
        return (min == 0) ? split(next, first) : first;
    }

    /**
     * S(i, first): members i.. with nothing yet written (no separator before the next
     * one) or after one; S(n, *) is next.
     */
    private int members(Expr.Members members, int next) {
        int n = members.members().size();
        int withFirst = next;
        int afterOne = next;
        for (int i = n - 1; i >= 0; i--) {
            int member = compile(members.members().get(i), afterOne);
            int separated = compile(members.separator(), member);
            if (members.required().get(i)) {
                withFirst = member;
                afterOne = separated;
            }
            else {
                withFirst = split(member, withFirst);
                afterOne = split(separated, afterOne);
            }
        }
        return withFirst;
    }

    /** About how many nodes {@code expr} compiles to (a call: one). */
    private static long size(Expr expr) {
        if (expr instanceof Expr.Literal literal) {
            return literal.text().length();
        }
        if (expr instanceof Expr.Chars) {
            return 8;
        }
        if (expr instanceof Expr.Seq seq) {
            return seq.parts().stream().mapToLong(AutomatonBuilder::size).sum();
        }
        if (expr instanceof Expr.Alt alt) {
            return 1 + alt.alternatives().stream().mapToLong(AutomatonBuilder::size).sum();
        }
        if (expr instanceof Expr.Repeat repeat) {
            long copies = (repeat.max() < 0) ? repeat.min() + 1 : repeat.max();
            return 1 + copies * (size(repeat.item()) + size(repeat.separator()) + 1);
        }
        if (expr instanceof Expr.Members members) {
            return 2L * members.members().size() + members.members().stream().mapToLong(AutomatonBuilder::size).sum()
                    + members.members().size() * size(members.separator());
        }
        return 1;
    }

    private Automaton freeze(int start) {
        int count = nodes.size();
        byte[] kind = new byte[count];
        int[] edgeStart = new int[count + 1];
        int edges = 0;
        for (int n = 0; n < count; n++) {
            edges += nodes.get(n).edges.size();
        }
        int[] lo = new int[edges];
        int[] hi = new int[edges];
        int[] target = new int[edges];
        int[][] specials = new int[count][];
        int e = 0;
        for (int n = 0; n < count; n++) {
            Node node = nodes.get(n);
            kind[n] = node.kind;
            edgeStart[n] = e;
            for (int[] edge : node.edges) {
                if (edge.length == 3) {
                    lo[e] = edge[0];
                    hi[e] = edge[1];
                    target[e] = edge[2];
                }
                else {
                    target[e] = edge[0];
                }
                e++;
            }
            if (!node.specials.isEmpty()) {
                int[] flat = new int[2 * node.specials.size()];
                for (int i = 0; i < node.specials.size(); i++) {
                    flat[2 * i] = node.specials.get(i)[0];
                    flat[2 * i + 1] = node.specials.get(i)[1];
                }
                specials[n] = flat;
            }
        }
        edgeStart[count] = e;
        return new Automaton(kind, edgeStart, lo, hi, target, specials, start);
    }

}
