package dev.specula.grammar;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The parser states of one {@link Automaton}, built on demand: the initial state, the
 * state after a byte or a special token, each interned (equal states are one object) and
 * memoized, so that a walk already taken is array lookups. Thread-safe.
 *
 * <p>
 * Bounds: a stack deeper than {@link #MAX_DEPTH} frames is cut (recursive schemas nest at
 * most that deep; left recursion ends there too); past {@link #MAX_STATES} interned
 * states, new states are computed each time instead of remembered.
 */
final class StateSpace {

    static final int MAX_DEPTH = 256;

    static final int MAX_STATES = 50_000;

    private static final int MAX_FRAMES = 1_000_000;

    final Automaton automaton;

    private final Map<Long, Frame> frames = new ConcurrentHashMap<>();

    private final AtomicInteger frameIds = new AtomicInteger(1);

    private final Map<ParserState, ParserState> states = new ConcurrentHashMap<>();

    /** holes[d]: the stand-in for any stack d frames deep. */
    private final Frame[] holes;

    /** No thread and not complete: nothing can follow, the text is wrong. */
    final ParserState dead;

    final ParserState initial;

    StateSpace(Automaton automaton) {
        this.automaton = automaton;
        this.holes = new Frame[MAX_DEPTH + 1];
        for (int depth = 0; depth <= MAX_DEPTH; depth++) {
            holes[depth] = Frame.hole(frameIds.getAndIncrement(), depth);
        }
        this.dead = intern(new ParserState(new int[0], new Frame[0], false, false));
        this.initial = intern(close(new int[] { automaton.start }, new Frame[] { Frame.ROOT }, 1));
    }

    int stateCount() {
        return states.size();
    }

    /** The state after byte {@code b} (0..255) from {@code state}. */
    ParserState next(ParserState state, int b) {
        ParserState[] memo = state.next;
        if (memo != null) {
            ParserState known = memo[b];
            if (known != null) {
                return known;
            }
        }
        ParserState after = intern(step(state, b));
        if (state.canonical && after.canonical) {
            if (memo == null) {
                memo = new ParserState[256];
                state.next = memo;
            }
            memo[b] = after;
        }
        return after;
    }

    /**
     * The ASCII bytes after which {@code state} is itself again, as two 64-bit sets
     * (bytes 0..63, 64..127); none for a state that is not interned (identity says
     * nothing then).
     */
    long[] selfLoops(ParserState state) {
        long[] loops = state.selfLoops;
        if (loops == null) {
            loops = new long[2];
            // a stuck state (dead among them) goes nowhere: it loops on nothing
            if (state.canonical && !state.isStuck()) {
                for (int b = 0; b < 128; b++) {
                    if (next(state, b) == state) {
                        loops[b >>> 6] |= 1L << b;
                    }
                }
            }
            state.selfLoops = loops;
        }
        return loops;
    }

    /**
     * {@code state}'s local state: the same threads, each stack replaced by a hole as
     * deep (so depth bounds act alike). Walking it decides every token whose bytes stay
     * above the stacks, for all states with these threads whatever their stacks: a JSON
     * string's inside, wherever the string is.
     */
    ParserState local(ParserState state) {
        ParserState local = state.local;
        if (local == null) {
            int[] nodes = state.nodes.clone();
            Frame[] stand = new Frame[nodes.length];
            for (int t = 0; t < nodes.length; t++) {
                stand[t] = holes[state.frames[t].depth];
            }
            local = intern(close(nodes, stand, nodes.length));
            state.local = local;
        }
        return local;
    }

    /** The state after {@code bytes}; {@link #dead} as soon as a byte is refused. */
    ParserState walk(ParserState state, byte[] bytes) {
        ParserState at = state;
        for (int i = 0; i < bytes.length && at != dead; i++) {
            at = next(at, bytes[i] & 0xFF);
        }
        return at;
    }

    /**
     * The state after special token {@code token} consumed whole; {@link #dead} if
     * refused.
     */
    ParserState special(ParserState state, int token) {
        ParserState target = specials(state).target(token);
        return (target == null) ? dead : target;
    }

    ParserState.SpecialMoves specials(ParserState state) {
        ParserState.SpecialMoves moves = state.specials;
        if (moves == null) {
            moves = computeSpecials(state);
            state.specials = moves;
        }
        return moves;
    }

    private ParserState.SpecialMoves computeSpecials(ParserState state) {
        // seeds by token: [node, frame index into state.frames]
        Map<Integer, List<int[]>> seeds = new LinkedHashMap<>();
        for (int t = 0; t < state.nodes.length; t++) {
            int[] edges = automaton.specialEdges[state.nodes[t]];
            if (edges == null) {
                continue;
            }
            for (int i = 0; i < edges.length; i += 2) {
                seeds.computeIfAbsent(edges[i], (token) -> new ArrayList<>()).add(new int[] { edges[i + 1], t });
            }
        }
        if (seeds.isEmpty()) {
            return ParserState.SpecialMoves.NONE;
        }
        int[] tokens = new int[seeds.size()];
        ParserState[] targets = new ParserState[seeds.size()];
        int k = 0;
        for (Map.Entry<Integer, List<int[]>> entry : seeds.entrySet()) {
            List<int[]> list = entry.getValue();
            int[] nodes = new int[list.size()];
            Frame[] stacks = new Frame[list.size()];
            for (int i = 0; i < nodes.length; i++) {
                nodes[i] = list.get(i)[0];
                stacks[i] = state.frames[list.get(i)[1]];
            }
            tokens[k] = entry.getKey();
            targets[k++] = intern(close(nodes, stacks, nodes.length));
        }
        return new ParserState.SpecialMoves(tokens, targets);
    }

    /** The threads after {@code b}, closed; not interned. */
    private ParserState step(ParserState state, int b) {
        Automaton a = automaton;
        int[] seedNodes = new int[8];
        Frame[] seedFrames = new Frame[8];
        int count = 0;
        for (int t = 0; t < state.nodes.length; t++) {
            int node = state.nodes[t];
            for (int e = a.edgeStart[node]; e < a.edgeStart[node + 1]; e++) {
                if (b >= a.edgeLo[e] && b <= a.edgeHi[e]) {
                    if (count == seedNodes.length) {
                        seedNodes = Arrays.copyOf(seedNodes, count * 2);
                        seedFrames = Arrays.copyOf(seedFrames, count * 2);
                    }
                    seedNodes[count] = a.edgeTarget[e];
                    seedFrames[count++] = state.frames[t];
                }
            }
        }
        return (count == 0) ? dead : close(seedNodes, seedFrames, count);
    }

    /**
     * The epsilon closure of the seed threads: SPLIT fans out, CALL pushes, RETURN pops
     * (on the empty stack: complete); BYTES nodes that can consume something are kept.
     */
    private ParserState close(int[] seedNodes, Frame[] seedFrames, int count) {
        Automaton a = automaton;
        int[] workNodes = Arrays.copyOf(seedNodes, Math.max(count, 8));
        Frame[] workFrames = Arrays.copyOf(seedFrames, Math.max(count, 8));
        int pending = count;
        Set<Long> visited = new HashSet<>();
        List<Frame> keptFrames = new ArrayList<>();
        long[] kept = new long[8];
        int keptCount = 0;
        boolean complete = false;
        boolean exited = false;
        while (pending > 0) {
            pending--;
            int node = workNodes[pending];
            Frame frame = workFrames[pending];
            if (!visited.add(((long) node << 32) | frame.id)) {
                continue;
            }
            byte kind = a.kind[node];
            int[] pushNodes;
            Frame pushFrame = frame;
            if (kind == Automaton.BYTES) {
                if (a.edgeStart[node] < a.edgeStart[node + 1] || a.specialEdges[node] != null) {
                    if (keptCount == kept.length) {
                        kept = Arrays.copyOf(kept, keptCount * 2);
                    }
                    // (node, index into keptFrames): sorted below by node then frame id
                    kept[keptCount++] = ((long) node << 32) | keptFrames.size();
                    keptFrames.add(frame);
                }
                continue;
            }
            if (kind == Automaton.SPLIT) {
                pushNodes = Arrays.copyOfRange(a.edgeTarget, a.edgeStart[node], a.edgeStart[node + 1]);
            }
            else if (kind == Automaton.CALL) {
                if (frame.depth >= MAX_DEPTH) {
                    continue;
                }
                int e = a.edgeStart[node];
                pushFrame = frame(a.edgeTarget[e + 1], frame);
                pushNodes = new int[] { a.edgeTarget[e] };
            }
            else if (frame == Frame.ROOT) {
                complete = true;
                continue;
            }
            else if (frame.isHole()) {
                exited = true;
                continue;
            }
            else {
                pushFrame = frame.parent;
                pushNodes = new int[] { frame.returnNode };
            }
            if (pending + pushNodes.length > workNodes.length) {
                int size = Math.max(workNodes.length * 2, pending + pushNodes.length);
                workNodes = Arrays.copyOf(workNodes, size);
                workFrames = Arrays.copyOf(workFrames, size);
            }
            for (int target : pushNodes) {
                workNodes[pending] = target;
                workFrames[pending++] = pushFrame;
            }
        }
        if (keptCount == 0 && !complete && !exited) {
            return dead;
        }
        long[] order = new long[keptCount];
        for (int i = 0; i < keptCount; i++) {
            int node = (int) (kept[i] >>> 32);
            int index = (int) kept[i];
            // frame ids and indexes both fit 31 bits: sort key (node, frame id), payload
            // index
            order[i] = ((long) node << 32) | keptFrames.get(index).id;
        }
        Integer[] byKey = new Integer[keptCount];
        for (int i = 0; i < keptCount; i++) {
            byKey[i] = i;
        }
        Arrays.sort(byKey, (x, y) -> Long.compare(order[x], order[y]));
        int[] nodes = new int[keptCount];
        Frame[] stacks = new Frame[keptCount];
        for (int i = 0; i < keptCount; i++) {
            nodes[i] = (int) (kept[byKey[i]] >>> 32);
            stacks[i] = keptFrames.get((int) kept[byKey[i]]);
        }
        return new ParserState(nodes, stacks, complete, exited);
    }

    private Frame frame(int returnNode, Frame parent) {
        long key = ((long) returnNode << 32) | parent.id;
        Frame known = frames.get(key);
        if (known != null) {
            return known;
        }
        int id = frameIds.getAndIncrement();
        if (id < 0) {
            // ids identify stacks: a wrapped id could make two stacks equal
            throw new IllegalStateException("The grammar's stack frame ids are exhausted; compile it again");
        }
        Frame fresh = new Frame(returnNode, parent, id);
        if (frames.size() >= MAX_FRAMES) {
            return fresh;
        }
        Frame raced = frames.putIfAbsent(key, fresh);
        return (raced != null) ? raced : fresh;
    }

    private ParserState intern(ParserState state) {
        if (state.canonical) {
            return state;
        }
        ParserState known = states.get(state);
        if (known != null) {
            return known;
        }
        if (states.size() >= MAX_STATES) {
            return state;
        }
        ParserState raced = states.putIfAbsent(state, state);
        if (raced != null) {
            return raced;
        }
        state.canonical = true;
        return state;
    }

}
