package dev.specula.engine;

import java.util.Arrays;
import java.util.function.IntFunction;

import ai.onnxruntime.OrtSession;
import org.jspecify.annotations.Nullable;

import dev.specula.kv.SequenceCache;
import dev.specula.model.StepInput;
import dev.specula.model.TreeAttention;
import dev.specula.proposer.DraftTree;
import dev.specula.proposer.TreeShape;
import dev.specula.sampling.LogitsProcessor;

/**
 * One round's draft tree as the draft model grows it (EAGLE-2's dynamic tree, with a
 * draft model in place of a feature head).
 *
 * <pre>
 * call 0        the draft's pending committed tokens → the root's row → its K likeliest children
 * call 1..D−1   the K best nodes of the deepest level (by path log-probability), one call of K tokens under
 *               tree attention (each sees the committed tokens and its ancestors) → K children each
 * select        the backbone (the draft's greedy chain: each level's top child of the level above's), then
 *               the best other nodes by score, N in all: ancestor-closed (a child's score never exceeds its
 *               parent's), kept in creation order (topological, siblings by descending score)
 * </pre>
 *
 * The backbone is always expanded and selected first, so a tree holds the chain the draft
 * would have proposed at the same depth: it can only add accepted tokens, never lose
 * them, and the nodes beyond the backbone are what the target's extra cost buys.
 *
 * D (depth) is the policy's draft length, K the shape's width; D draft calls in all, as a
 * chain of D. The draft's cache then holds the committed tokens and every expanded node,
 * from {@link #base} on; after verification it keeps only the accepted path's expanded
 * nodes ({@link #fedPath}).
 *
 * <p>
 * The GRIFFIN feature head grows the same tree: its cache holds pairs (f_t, x_{t+1}), one
 * position behind the tokens ({@link #draftBase} = base − 1), and each fed node's feature
 * is its parent's regress row ({@link #keepRegress}). None of its nodes are kept: the
 * accepted ones come back with the target's own features.
 */
final class TreeDraft {

    private final int width;

    private final int depth;

    /** Logical position of the first tree node: the committed tokens' count. */
    final int base;

    /**
     * The drafting model's cache position of the first node: {@link #base} for a draft
     * model, base − 1 for the feature head.
     */
    private final int draftBase;

    /**
     * The feature head's regress row of each fed candidate (and, at index {@code count}
     * of none, the root's in {@link #rootRegress}); null for a draft model.
     */
    private float @Nullable [] @Nullable [] regress;

    private float @Nullable [] rootRegress;

    /** Candidates (every proposed node): token, parent candidate (-1: root), score. */
    private int[] tokens = new int[32];

    private int[] parents = new int[32];

    private float[] scores = new float[32];

    /** The draft cache's logical position of an expanded candidate; -1 when not fed. */
    private int[] fedAt = new int[32];

    private int count;

    /** Candidates proposed at the deepest level, best first. */
    private int[] deepest = new int[0];

    /** Candidates being fed in the call in flight (empty before call 0). */
    private int[] frontier = new int[0];

    private int level;

    /** The backbone's deepest candidate (-1 before call 0). */
    private int backbone = -1;

    /** Candidate index of each node of {@link #selected}. */
    private int[] selectedCandidates = new int[0];

    /** The tree verified, once selected. */
    @Nullable DraftTree selected;

    TreeDraft(TreeShape shape, int depth, int base) {
        this(shape, depth, base, false);
    }

    /**
     * A tree grown by the draft model or by the feature head.
     * @param featureHead whether the GRIFFIN feature head grows the tree
     */
    TreeDraft(TreeShape shape, int depth, int base, boolean featureHead) {
        this.width = shape.width();
        this.depth = depth;
        this.base = base;
        this.draftBase = featureHead ? base - 1 : base;
        this.regress = featureHead ? new float[32][] : null;
    }

    /**
     * Keeps the feature head's regress rows of the call just made [rows, hidden]: the
     * root's (call 0: one row) or the fed frontier's, in order.
     */
    void keepRegress(float[] rows, int count) {
        int hidden = rows.length / count;
        if (level == 0) {
            rootRegress = Arrays.copyOfRange(rows, (count - 1) * hidden, count * hidden);
            return;
        }
        for (int i = 0; i < frontier.length; i++) {
            regress[frontier[i]] = Arrays.copyOfRange(rows, i * hidden, (i + 1) * hidden);
        }
    }

    /** Whether another draft call is needed: levels above the depth remain. */
    boolean expanding() {
        return level < depth && (level == 0 || deepest.length > 0);
    }

    /**
     * Whether the next draft call is the root's (call 0, the pending committed tokens).
     */
    boolean atRoot() {
        return level == 0;
    }

    /**
     * The next level's draft call: the deepest level's best K nodes under tree attention.
     */
    StepInput nextLevel(SequenceCache draftCache, OrtSession.RunOptions runOptions) {
        frontier = Arrays.copyOf(deepest, Math.min(width, deepest.length));
        if (backbone >= 0 && Arrays.stream(frontier).noneMatch((candidate) -> candidate == backbone)) {
            // the greedy chain goes on even when other paths score higher
            frontier[frontier.length - 1] = backbone;
        }
        int first = draftCache.logicalLength();
        int[] input = new int[frontier.length];
        // parents of every node from the draft base on: the ones fed before, then this
        // call's
        int[] treeParents = new int[first + frontier.length - draftBase];
        for (int c = 0; c < count; c++) {
            if (fedAt[c] >= 0) {
                treeParents[fedAt[c] - draftBase] = parentPosition(c);
            }
        }
        for (int i = 0; i < frontier.length; i++) {
            int candidate = frontier[i];
            input[i] = tokens[candidate];
            fedAt[candidate] = first + i;
            treeParents[first + i - draftBase] = parentPosition(candidate);
        }
        TreeAttention attention = new TreeAttention(draftBase, treeParents);
        if (regress == null) {
            return new StepInput(draftCache, input, frontier.length, false, runOptions, attention);
        }
        // the head: each node with its parent's regress [frontier, hidden]
        int hidden = rootRegress.length;
        float[] features = new float[frontier.length * hidden];
        for (int i = 0; i < frontier.length; i++) {
            int parent = parents[frontier[i]];
            System.arraycopy(parent < 0 ? rootRegress : regress[parent], 0, features, i * hidden, hidden);
        }
        return new StepInput(draftCache, input, frontier.length, frontier.length, runOptions, attention, features);
    }

    private int parentPosition(int candidate) {
        return parents[candidate] < 0 ? draftBase - 1 : fedAt[parents[candidate]];
    }

    /**
     * Takes the call's rows: each fed node's (or the root's) K likeliest children become
     * candidates. {@code rowProcessor} gives the processor standing after a path's
     * tokens, or null when there is none.
     * @param logits rows [1 (call 0) or the frontier's size, width]
     */
    void expand(float[] logits, int width, IntFunction<@Nullable LogitsProcessor> rowProcessor) {
        int rows = level == 0 ? 1 : frontier.length;
        int[] created = new int[rows * this.width];
        int made = 0;
        for (int row = 0; row < rows; row++) {
            int parent = level == 0 ? -1 : frontier[row];
            LogitsProcessor processor = rowProcessor.apply(parent);
            if (processor != null) {
                processor.process(logits, row * width, width);
            }
            int before = made;
            made = addChildren(logits, row * width, width, parent, created, made);
            if (parent == backbone && made > before) {
                // the row's top child: the greedy chain's next token
                backbone = created[before];
            }
        }
        level++;
        // the deepest level's candidates, best first (ties: earlier first)
        Integer[] order = new Integer[made];
        for (int i = 0; i < made; i++) {
            order[i] = created[i];
        }
        Arrays.sort(order, (a, b) -> scores[a] != scores[b] ? Float.compare(scores[b], scores[a]) : a - b);
        deepest = Arrays.stream(order).mapToInt(Integer::intValue).toArray();
    }

    /** The path tokens of a candidate, root first. */
    int[] pathTokens(int candidate) {
        int length = 0;
        for (int c = candidate; c >= 0; c = parents[c]) {
            length++;
        }
        int[] path = new int[length];
        for (int c = candidate; c >= 0; c = parents[c]) {
            path[--length] = tokens[c];
        }
        return path;
    }

    /**
     * The row's K likeliest tokens (a masked token, −∞, never), by log-softmax, as
     * children of {@code parent}.
     */
    private int addChildren(float[] logits, int offset, int width, int parent, int[] created, int made) {
        float max = Float.NEGATIVE_INFINITY;
        for (int v = 0; v < width; v++) {
            max = Math.max(max, logits[offset + v]);
        }
        if (max == Float.NEGATIVE_INFINITY) {
            return made;
        }
        // the normalizer with an approximate exp (relative error below 1e-4): scores rank
        // and size trees, they decide nothing the verification checks, and Math.exp over
        // every row of every level cost a tenth of a round
        // tokens more than 16 below the best add less than e^-16 = 1.1e-7 each: skipped
        // (a comparison costs far less than an exp)
        float sum = 0;
        float floor = max - 16f;
        for (int v = 0; v < width; v++) {
            float logit = logits[offset + v];
            if (logit > floor) {
                sum += expNonPositive(logit - max);
            }
        }
        float logNormalizer = (float) (max + Math.log(sum));
        int[] top = topK(logits, offset, width, this.width);
        float parentScore = parent < 0 ? 0f : scores[parent];
        for (int token : top) {
            if (logits[offset + token] == Float.NEGATIVE_INFINITY) {
                break;
            }
            int candidate = add(token, parent, parentScore + logits[offset + token] - logNormalizer);
            created[made++] = candidate;
        }
        return made;
    }

    /**
     * e^x for x ≤ 0 (0 below −87): 2^(x·log2 e) split into an integer power, set in the
     * exponent bits, and a fraction, by a degree-5 polynomial; relative error below 1e-4.
     */
    static float expNonPositive(float x) {
        float t = Math.max(x, -87f) * 1.4426950f;
        // floor(t) for t in [-126, 0]: the truncation of a positive number
        int whole = (int) (t + 128f) - 128;
        float f = t - whole;
        float fraction = 1f
                + f * (0.69314720f + f * (0.24022652f + f * (0.05550357f + f * (0.00961813f + f * 0.00133336f))));
        float power = Float.intBitsToFloat((whole + 127) << 23);
        return x < -87f ? 0f : power * fraction;
    }

    /** Indices of the k largest values, largest first (ties: lower index first). */
    static int[] topK(float[] logits, int offset, int width, int k) {
        int n = Math.min(k, width);
        int[] top = new int[n];
        float[] values = new float[n];
        int filled = 0;
        for (int v = 0; v < width; v++) {
            float value = logits[offset + v];
            if (filled == n && value <= values[n - 1]) {
                continue;
            }
            int at = filled < n ? filled++ : n - 1;
            while (at > 0 && values[at - 1] < value) {
                values[at] = values[at - 1];
                top[at] = top[at - 1];
                at--;
            }
            values[at] = value;
            top[at] = v;
        }
        return Arrays.copyOf(top, filled);
    }

    private int add(int token, int parent, float score) {
        if (count == tokens.length) {
            int grown = count * 2;
            tokens = Arrays.copyOf(tokens, grown);
            parents = Arrays.copyOf(parents, grown);
            scores = Arrays.copyOf(scores, grown);
            fedAt = Arrays.copyOf(fedAt, grown);
            if (regress != null) {
                regress = Arrays.copyOf(regress, grown);
            }
        }
        tokens[count] = token;
        parents[count] = parent;
        scores[count] = score;
        fedAt[count] = -1;
        return count++;
    }

    /**
     * The candidates in the order they join a tree: the backbone root first, then the
     * others by descending score (ties: earlier first). Every prefix is ancestor-closed.
     */
    private int[] selectionOrder() {
        boolean[] onBackbone = new boolean[count];
        int backboneLength = 0;
        for (int c = backbone; c >= 0; c = parents[c]) {
            onBackbone[c] = true;
            backboneLength++;
        }
        int[] order = new int[count];
        int at = backboneLength;
        for (int c = backbone; c >= 0; c = parents[c]) {
            order[--at] = c;
        }
        Integer[] others = new Integer[count - backboneLength];
        int n = 0;
        for (int c = 0; c < count; c++) {
            if (!onBackbone[c]) {
                others[n++] = c;
            }
        }
        Arrays.sort(others, (a, b) -> scores[a] != scores[b] ? Float.compare(scores[b], scores[a]) : a - b);
        for (int i = 0; i < others.length; i++) {
            order[backboneLength + i] = others[i];
        }
        return order;
    }

    /** The backbone's nodes: the depth of the draft's greedy chain. */
    int backboneLength() {
        int length = 0;
        for (int c = backbone; c >= 0; c = parents[c]) {
            length++;
        }
        return length;
    }

    /** For each node of the selected tree, whether it lies off the backbone. */
    boolean[] offBackbone() {
        boolean[] off = new boolean[selectedCandidates.length];
        java.util.Arrays.fill(off, true);
        for (int c = backbone; c >= 0; c = parents[c]) {
            for (int node = 0; node < selectedCandidates.length; node++) {
                if (selectedCandidates[node] == c) {
                    off[node] = false;
                }
            }
        }
        return off;
    }

    /** Every candidate's score in selection order: what sizing the tree weighs. */
    float[] scoresInSelectionOrder() {
        int[] order = selectionOrder();
        float[] ordered = new float[order.length];
        for (int i = 0; i < order.length; i++) {
            ordered[i] = scores[order[i]];
        }
        return ordered;
    }

    /**
     * Selects the first {@code nodes} candidates in selection order as the tree to verify
     * (null when none was proposed).
     */
    @Nullable DraftTree select(int nodes) {
        if (count == 0 || nodes == 0) {
            return null;
        }
        int n = Math.min(nodes, count);
        int[] chosen = Arrays.copyOf(selectionOrder(), n);
        // creation order is topological: a parent is created before its children
        Arrays.sort(chosen);
        int[] nodeOf = new int[count];
        Arrays.fill(nodeOf, -1);
        int[] treeTokens = new int[n];
        int[] treeParents = new int[n];
        float[] treeScores = new float[n];
        for (int i = 0; i < n; i++) {
            int candidate = chosen[i];
            nodeOf[candidate] = i;
            treeTokens[i] = tokens[candidate];
            if (parents[candidate] >= 0 && nodeOf[parents[candidate]] < 0) {
                throw new IllegalStateException("The selected draft tree lacks the parent of candidate " + candidate);
            }
            treeParents[i] = parents[candidate] < 0 ? DraftTree.ROOT : nodeOf[parents[candidate]];
            treeScores[i] = scores[candidate];
        }
        selectedCandidates = chosen;
        selected = new DraftTree(treeTokens, treeParents, treeScores);
        return selected;
    }

    /**
     * The draft cache's logical positions of the accepted path's expanded nodes: the
     * longest prefix of the path the draft was fed (ascending).
     */
    int[] fedPath(int[] path) {
        int[] fed = new int[path.length];
        int n = 0;
        for (int node : path) {
            int position = fedAt[selectedCandidates[node]];
            if (position < 0) {
                break;
            }
            fed[n++] = position;
        }
        return Arrays.copyOf(fed, n);
    }

    /**
     * The target's tree attention for a verification of pending + the selected tree whose
     * first node sits at {@link #base}.
     */
    TreeAttention targetAttention() {
        DraftTree tree = selected;
        int[] treeParents = new int[tree.size()];
        for (int i = 0; i < tree.size(); i++) {
            treeParents[i] = tree.parent(i) == DraftTree.ROOT ? base - 1 : base + tree.parent(i);
        }
        return new TreeAttention(base, treeParents);
    }

}
