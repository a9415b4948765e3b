package dev.specula.engine;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.random.RandomGenerator;

import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import org.jspecify.annotations.Nullable;

import dev.specula.kv.SequenceCache;
import dev.specula.model.CallTokens;
import dev.specula.model.StepInput;
import dev.specula.model.StepOutput;
import dev.specula.policy.FixedPolicy;
import dev.specula.policy.RoundContext;
import dev.specula.policy.SpeculationPolicy;
import dev.specula.proposer.DraftTree;
import dev.specula.proposer.PromptLookup;
import dev.specula.proposer.ProposerKind;
import dev.specula.proposer.TokenProposer;
import dev.specula.sampling.LogitsProcessor;
import dev.specula.sampling.LogitsProcessors;
import dev.specula.sampling.SamplingParams;
import dev.specula.sampling.TokenLogprob;
import dev.specula.sampling.TreeVerdict;

/**
 * One request's state in the decode loop: its tokens, its KV caches in both models, its
 * policy, random generator, output and counters, and the drafts of the round in flight.
 *
 * <p>
 * Cache invariant between rounds: each cache holds a prefix of the committed tokens; the
 * tokens after it are still to be fed to that model ({@link #pendingFor(SequenceCache)}).
 * The target's cache always lacks at least the last committed token, whose logits start
 * the next verification.
 */
final class Sequence implements AutoCloseable {

    final GenerationRequest request;

    final SamplingParams sampling;

    final SpeculationPolicy policy;

    final Speculation speculation;

    /**
     * The proposer that needs no model (prompt lookup, the prediction) when one proposes
     * for this sequence; null otherwise.
     */
    final @Nullable TokenProposer tokenProposer;

    /**
     * For a proposer that drafts with the model unless its lookup matches (model+ngram,
     * model+suffix): the lookup's proposal for the coming round, made before the policy
     * chooses γ ({@link #roundContext}); {@link #lookaheadLength} of it, −1 when none is
     * pending.
     */
    private final int[] lookahead = new int[FixedPolicy.MAX_GAMMA];

    private int lookaheadLength = -1;

    final RandomGenerator random;

    /**
     * Rewrites the target's and the draft's rows (penalties, bias, grammar); null when
     * the request asks for none. Between rounds it stands at {@link #processorMark}:
     * after the committed tokens.
     */
    final @Nullable LogitsProcessor processor;

    private int processorMark;

    /** The request's grammar (also the last of {@link #processor}); null: none. */
    final @Nullable GrammarProcessor grammar;

    /**
     * The output tokens' log-probabilities, when the request asks for them; else null.
     */
    final @Nullable List<TokenLogprob> logprobs;

    /**
     * The prompt tokens' log-probabilities, read as the prefill feeds the prompt, when
     * the request asks for them; else null.
     */
    final @Nullable PromptScoring scoring;

    /**
     * Prompt tokens this round's target call feeds only to score them (no drafts, nothing
     * committed); 0 in a decoding round.
     */
    int scoringTokens;

    /**
     * Rows of prompt positions this round's verification returns before its own, to score
     * them; 0 when it returns none.
     */
    private int scoringRows;

    /**
     * The logits of this sequence's last verification, an array the next one writes into
     * ({@link StepInput#logitsInto()}) when it holds that call's rows: no new (γ + 1) ×
     * vocabulary floats a round. Kept up to {@link #MAX_KEPT_LOGITS_BYTES}.
     */
    private float @Nullable [] verificationLogits;

    /**
     * The logits of this sequence's last chain draft step, an array the next one writes
     * into: a chain's draft row is read before the next step (the token, its probability
     * q, the policy's look at it) and kept by nothing.
     */
    private float @Nullable [] draftLogits;

    /**
     * The largest logits array a sequence keeps for its next calls (27 rows at a
     * 151,936-token vocabulary); larger ones are a call's own.
     */
    static final long MAX_KEPT_LOGITS_BYTES = 16L << 20;

    /**
     * The most committed tokens a rollback may leave for the next call to feed again
     * instead of copying the cache ({@link SequenceCache#rollbackOrRewind}): a round's
     * accepted drafts and its first token; a few more rows in a call cost far less than a
     * copy of every layer's KV.
     */
    static final int MAX_FED_AGAIN = 8;

    final GenerationStats stats = new GenerationStats();

    final OutputText output;

    final SequenceCache targetCache;

    /**
     * The drafting model's cache (the draft model's, or the feature head's). Null when
     * the sequence does not speculate with a model, or stopped speculating (its draft
     * failed).
     */
    @Nullable SequenceCache draftCache;

    /**
     * The target features waiting for the feature head, when the head drafts (proposer
     * {@code griffin}); null otherwise.
     */
    final @Nullable HeadFeatures head;

    /** Committed tokens the round's verification fed before its drafts. */
    int verifiedPending;

    /**
     * Why drafting was switched off mid-generation (the draft failed or ran past its time
     * limit); null while it runs.
     */
    @Nullable FallbackReason fallback;

    /**
     * What this sequence alone threw (its policy, its listener); null while it is
     * healthy. It then steps no more.
     */
    @Nullable Throwable failure;

    /**
     * The sequence's own run options, or the scheduler's shared ones when it steps in a
     * batch.
     */
    final OrtSession.RunOptions runOptions;

    private final boolean ownsRunOptions;

    final int promptLength;

    /** Prompt and committed generated tokens. */
    private int[] tokens;

    private int length;

    // The round in flight
    int requestedDrafts;

    int[] drafts = new int[8];

    /** q_i per draft, only when sampling (greedy needs no distributions). */
    float[] @Nullable [] draftDistributions = new float[8][];

    int drafted;

    /**
     * Of {@link #drafted}, the engine's fillers (the last ones): a target that needs two
     * tokens a call verifies them, but no proposer proposed them.
     */
    int fillers;

    /** Whether the draft model is still to propose this round. */
    boolean drafting;

    /**
     * Whether the draft model drafts this round (a chain or a tree), not a proposer
     * without one.
     */
    boolean modelDrafts;

    double draftLogProbability;

    long roundDraftNanos;

    /**
     * The round's draft tree while the draft model grows it and the target verifies it;
     * null in a chain round.
     */
    @Nullable TreeDraft treeDraft;

    /** Tokens of the round's tree verification call (for its cost). */
    int lastVerifiedTokens;

    /**
     * The target's last_hidden_state row for the last committed token's prediction, when
     * kept.
     */
    float @Nullable [] lastHiddenState;

    Sequence(GenerationRequest request, SpeculationPolicy policy, Speculation speculation, OutputText output,
            SequenceCache targetCache, @Nullable SequenceCache draftCache, @Nullable HeadFeatures head,
            OrtSession.@Nullable RunOptions sharedRunOptions) throws OrtException {
        this.request = request;
        this.head = head;
        this.sampling = request.sampling();
        this.policy = policy;
        this.speculation = speculation;
        this.tokenProposer = speculation.newTokenProposer(request.promptIds().length);
        this.random = new SplittableRandom(
                sampling.seed() != null ? sampling.seed() : System.nanoTime() ^ Thread.currentThread().getId());
        this.grammar = request.grammar() == null ? null : new GrammarProcessor(request.grammar().newMatcher());
        this.processor = LogitsProcessors.of(processors(request, grammar));
        this.logprobs = request.wantsLogprobs() ? new ArrayList<>() : null;
        this.scoring = request.wantsPromptLogprobs() ? new PromptScoring(request.promptIds(), request.promptLogprobs())
                : null;
        this.output = output;
        if (scoring != null && scoring.done()) {
            // a one-token prompt: nothing to score
            output.promptScored(scoring.logprobs());
        }
        if (request.maxNewTokens() == 0 && (scoring == null || scoring.done())) {
            // nothing to score, nothing to generate
            output.finish(FinishReason.LENGTH);
        }
        this.targetCache = targetCache;
        this.draftCache = draftCache;
        this.ownsRunOptions = sharedRunOptions == null;
        this.runOptions = ownsRunOptions ? new OrtSession.RunOptions() : sharedRunOptions;
        this.promptLength = request.promptIds().length;
        this.tokens = Arrays.copyOf(request.promptIds(), promptLength + Math.min(request.maxNewTokens(), 4096) + 1);
        this.length = promptLength;
        // a batched run serves other sequences too: cancelling one is handled between
        // steps, not by aborting it
        if (request.cancellation() != null && ownsRunOptions) {
            request.cancellation().register(runOptions);
        }
    }

    /** Penalties first, the grammar last: it masks (and picks from) the penalized row. */
    private static List<LogitsProcessor> processors(GenerationRequest request, @Nullable GrammarProcessor grammar) {
        List<LogitsProcessor> processors = new ArrayList<>(2);
        if (!request.penalties().isNone()) {
            processors.add(request.penalties().newProcessor(request.promptIds()));
        }
        if (grammar != null) {
            processors.add(grammar);
        }
        return processors;
    }

    /**
     * Puts the processor back after the committed tokens (a round's drafts moved it on);
     * null when there is none.
     */
    @Nullable LogitsProcessor processorAtCommitted() {
        if (processor != null) {
            processor.resetTo(processorMark);
        }
        return processor;
    }

    /** Prompt + committed tokens. */
    int length() {
        return length;
    }

    int lastToken() {
        return tokens[length - 1];
    }

    int generated() {
        return length - promptLength;
    }

    int remaining() {
        return request.maxNewTokens() - output.count();
    }

    /** Whether the sequence steps no more: its output ended, or it failed. */
    boolean isFinished() {
        return failure != null || output.isFinished();
    }

    /** Fails this sequence alone: the others of its batch go on. */
    void fail(Throwable cause) {
        if (failure == null) {
            failure = cause;
        }
    }

    boolean isCancelled() {
        return request.cancellation() != null && request.cancellation().isCancelled();
    }

    RoundContext roundContext() {
        ProposerKind kind = speculation.proposer();
        String proposer = kind == null ? null : kind.id();
        if (kind != null && kind.usesModel() && tokenProposer != null) {
            // the lookup when it matches, else the draft model: the policy chooses γ
            // knowing which, since their drafts cost and land so differently
            lookaheadLength = lookUp(lookahead, Math.min(lookahead.length, Math.max(1, remaining())));
            proposer = lookaheadLength > 0 ? kind.lookupId() : ProposerKind.MODEL.id();
        }
        return new RoundContext(generated(), remaining(), lastToken(), lastHiddenState, proposer);
    }

    /**
     * Up to {@code max} tokens of the proposer without a model into {@code out}, only as
     * many as the grammar allows; how many.
     */
    private int lookUp(int[] out, int max) {
        int proposed = tokenProposer.propose(tokens, length, max, out);
        if (grammar != null && proposed > 0) {
            // a proposal the grammar forbids would be rejected: propose only its allowed
            // prefix
            proposed = grammar.allowedPrefix(out, proposed);
        }
        return proposed;
    }

    /**
     * Committed tokens the model owning {@code cache} has not seen yet (the first may be
     * the whole prompt).
     */
    int[] pendingFor(SequenceCache cache) {
        return Arrays.copyOfRange(tokens, cache.logicalLength(), length);
    }

    /**
     * Whether the draft can read every token it has not seen yet. A target whose logits
     * are wider than the draft's (padded embedding rows) can emit an id the draft has no
     * embedding for; from then on this sequence decodes plainly, which is still exact.
     */
    boolean draftCanRead(int draftWidth) {
        // the head's pair t reads token t + 1
        int first = draftCache.logicalLength() + (head != null ? 1 : 0);
        for (int i = first; i < length; i++) {
            if (tokens[i] >= draftWidth) {
                return false;
            }
        }
        return true;
    }

    /**
     * Starts a round that drafts up to {@code gamma} tokens: the proposer without a model
     * (prompt lookup, the prediction) proposes them at once when it has them; otherwise
     * the draft model is to propose them, if it can: as a tree when the request drafts
     * trees and {@code tree} says this round grows one (not while branches do not pay),
     * else as a chain.
     */
    void beginRound(int gamma, boolean modelCanDraft, boolean tree) {
        requestedDrafts = gamma;
        scoringTokens = 0;
        drafted = 0;
        fillers = 0;
        draftLogProbability = 0;
        roundDraftNanos = 0;
        if (gamma > drafts.length) {
            drafts = Arrays.copyOf(drafts, gamma);
            draftDistributions = Arrays.copyOf(draftDistributions, gamma);
        }
        boolean proposedWithoutModel = false;
        if (gamma > 0 && tokenProposer != null) {
            long start = System.nanoTime();
            if (lookaheadLength >= 0) {
                // looked up before the policy chose γ: the same tokens, cut to γ
                drafted = Math.min(gamma, lookaheadLength);
                System.arraycopy(lookahead, 0, drafts, 0, drafted);
            }
            else {
                drafted = lookUp(drafts, gamma);
            }
            // deterministic proposals: q is one-hot (null)
            Arrays.fill(draftDistributions, 0, drafted, null);
            proposedWithoutModel = drafted > 0;
            roundDraftNanos = System.nanoTime() - start;
        }
        lookaheadLength = -1;
        drafting = !proposedWithoutModel && gamma > 0 && modelCanDraft;
        modelDrafts = drafting;
        treeDraft = drafting && tree && request.tree() != null
                ? new TreeDraft(request.tree(), gamma, length, head != null) : null;
    }

    /**
     * Whether this round only scores prompt tokens: rows of prompt positions are still to
     * read, and more than one call may return ({@code rowsPerCall}) before the rest goes
     * with the first verification, or nothing is to be generated after them.
     */
    boolean scoresOnly(int rowsPerCall) {
        return scoring != null && !scoring.done() && (request.maxNewTokens() == 0 || scoring.rowsLeft() > rowsPerCall);
    }

    /**
     * Starts a round that drafts nothing and feeds the next prompt tokens to score them:
     * {@code rowsPerCall} of them (a size {@code call} allows), never leaving fewer than
     * its smallest call for a call that only scores; never the last prompt token, unless
     * nothing is generated after it and a call needs it to carry a size {@code call}
     * allows. Its row is not read, and nothing reads its KV: with rows computed two at a
     * time ({@link CallTokens#multiple()} 2), it may be the one row of an odd call.
     */
    void beginScoringRound(int rowsPerCall, CallTokens call) {
        requestedDrafts = 0;
        drafted = 0;
        fillers = 0;
        drafting = false;
        modelDrafts = false;
        treeDraft = null;
        draftLogProbability = 0;
        roundDraftNanos = 0;
        int left = scoring.rowsLeft();
        int take = Math.min(left, rowsPerCall);
        if (request.maxNewTokens() == 0) {
            int smallest = call.smallest();
            if (take < left && left - take < smallest) {
                int shorter = call.roundDown(left - smallest);
                take = shorter >= smallest ? shorter : left;
            }
            int feedable = length - targetCache.logicalLength();
            take = Math.min(call.atLeast(take), Math.max(take, feedable));
        }
        scoringTokens = take;
    }

    /**
     * The target's call of a round that only scores: the next {@link #scoringTokens}
     * prompt tokens, a row each (and every hidden state, for the feature head).
     */
    StepInput scoringStep() {
        int from = targetCache.logicalLength();
        if (from != scoring.scored()) {
            throw new IllegalStateException(
                    "The target fed " + from + " prompt tokens, but " + scoring.scored() + " rows were read");
        }
        int[] input = Arrays.copyOfRange(tokens, from, from + scoringTokens);
        verifiedPending = input.length;
        boolean allHidden = head != null && draftCache != null;
        return new StepInput(targetCache, input, input.length, allHidden ? input.length : 0, runOptions, null, null);
    }

    /**
     * Reads the prompt positions' rows of a round that only scored; once the prompt is
     * scored, a request that generates nothing ends.
     */
    void acceptScoring(StepOutput output) {
        scoring.read(output.logits(), output.width(), Math.min(output.rows(), scoring.rowsLeft()));
        if (scoring.done()) {
            this.output.promptScored(scoring.logprobs());
            if (request.maxNewTokens() == 0) {
                this.output.finish(FinishReason.LENGTH);
            }
        }
    }

    /**
     * This round's verification rows: the rows of prompt positions it led with (to score
     * them) read and dropped.
     */
    StepOutput readScoringRows(StepOutput verified) {
        if (scoringRows == 0) {
            return verified;
        }
        int width = verified.width();
        scoring.read(verified.logits(), width, scoringRows);
        output.promptScored(scoring.logprobs());
        float[] rows = Arrays.copyOfRange(verified.logits(), scoringRows * width, verified.rows() * width);
        StepOutput verification = new StepOutput(rows, verified.rows() - scoringRows, width, verified.hiddenState(),
                verified.hiddenRows(), verified.runNanos());
        scoringRows = 0;
        return verification;
    }

    /**
     * Rows of prompt positions still to score that a verification feeding the pending
     * tokens returns before its own: every pending token's but the last's (whose row
     * verifies).
     */
    private int scoringRowsOfVerification() {
        if (scoring == null || scoring.done()) {
            return 0;
        }
        int pending = length - targetCache.logicalLength();
        if (scoring.rowsLeft() != pending - 1) {
            throw new IllegalStateException(scoring.rowsLeft() + " prompt rows are left to score, but " + pending
                    + " tokens are pending for the target");
        }
        return pending - 1;
    }

    /** The committed tokens the target has not seen: the next call carries them first. */
    int pendingTargetTokens() {
        return length - targetCache.logicalLength();
    }

    /**
     * Whether the feature head can draft this round: the target has fed every committed
     * token but the last, and the features of what it fed since the head's last round
     * wait (none before the first verification, which feeds the prompt).
     */
    boolean headCanDraft() {
        int fed = targetCache.logicalLength();
        if (draftCache.logicalLength() + head.pendingRows() != fed) {
            throw new IllegalStateException("The feature head holds " + draftCache.logicalLength() + " pairs and "
                    + head.pendingRows() + " features wait, but the target fed " + fed + " tokens");
        }
        return head.pendingRows() > 0 && fed == length - 1;
    }

    /** The round's next draft call: a chain's next token, or the tree's next level. */
    StepInput draftStep() {
        if (head != null) {
            return treeDraft != null && !treeDraft.atRoot() ? treeDraft.nextLevel(draftCache, runOptions) : headStep();
        }
        if (treeDraft != null) {
            return treeDraft.atRoot() ? new StepInput(draftCache, pendingFor(draftCache), 1, false, runOptions)
                    : treeDraft.nextLevel(draftCache, runOptions);
        }
        return new StepInput(draftCache, draftInput(), 1, 0, runOptions, null, null, chainDraftLogits());
    }

    /**
     * The feature head's next call: in the round's first, the pairs of the committed
     * positions it has not seen (f_t with x_{t+1}, up to the last committed token); then
     * the last draft with the regress of the call that drafted it.
     */
    private StepInput headStep() {
        if (drafted == 0) {
            int pairs = draftCache.logicalLength();
            int[] input = Arrays.copyOfRange(tokens, pairs + 1, length);
            float[] features = head.takePending(pairs + input.length);
            return new StepInput(draftCache, input, 1, 1, runOptions, null, features, chainDraftLogits());
        }
        return new StepInput(draftCache, new int[] { drafts[drafted - 1] }, 1, 1, runOptions, null, head.regress(),
                chainDraftLogits());
    }

    /** The array a chain's draft step may write its logits into; none for a tree's. */
    private float @Nullable [] chainDraftLogits() {
        return treeDraft == null ? draftLogits : null;
    }

    /**
     * Keeps a chain draft step's logits array, once its row is read, for the next step to
     * write into.
     */
    void keepDraftLogits(float[] logits) {
        if (treeDraft == null) {
            draftLogits = kept(draftLogits, logits);
        }
    }

    /**
     * The processor standing after the committed tokens and the path of tree candidate
     * {@code candidate} (-1: the root); null when there is none.
     */
    @Nullable LogitsProcessor processorAfter(TreeDraft tree, int candidate) {
        LogitsProcessor processor = processorAtCommitted();
        if (processor != null && candidate >= 0) {
            for (int token : tree.pathTokens(candidate)) {
                processor.advance(token);
            }
        }
        return processor;
    }

    /**
     * The target's call: pending tokens and the chain's drafts, or pending tokens and the
     * selected tree (its root's row and each node's); when the prompt is scored, the rows
     * of the pending prompt positions before them ({@link #readScoringRows}).
     */
    StepInput verificationStep() {
        boolean hidden = policy.usesTargetHiddenState();
        // the head reads the features of every position the target feeds
        boolean allHidden = head != null && draftCache != null;
        verifiedPending = length - targetCache.logicalLength();
        scoringRows = scoringRowsOfVerification();
        if (treeDraft != null && treeDraft.selected != null) {
            DraftTree tree = treeDraft.selected;
            int pending = length - targetCache.logicalLength();
            int[] input = Arrays.copyOfRange(tokens, targetCache.logicalLength(), length + tree.size());
            for (int i = 0; i < tree.size(); i++) {
                input[pending + i] = tree.token(i);
            }
            lastVerifiedTokens = input.length;
            return new StepInput(targetCache, input, scoringRows + tree.size() + 1,
                    allHidden ? input.length : hidden ? tree.size() + 1 : 0, runOptions, treeDraft.targetAttention(),
                    null, logitsInto());
        }
        int[] input = verificationInput();
        return new StepInput(targetCache, input, scoringRows + drafted + 1,
                allHidden ? input.length : hidden ? drafted + 1 : 0, runOptions, null, null, logitsInto());
    }

    /**
     * The array this round's verification may write its logits into: the last one's,
     * unless the call also returns rows of prompt positions to score (read and dropped
     * first, {@link #readScoringRows}).
     */
    private float @Nullable [] logitsInto() {
        return scoringRows == 0 ? verificationLogits : null;
    }

    /**
     * Keeps a verification's logits array, once the round has read it, for the next
     * round's call to write into: nothing holds it after the round (the verifiers and
     * log-probabilities read it, and copy what they keep).
     */
    void keepVerificationLogits(float[] logits) {
        verificationLogits = kept(verificationLogits, logits);
    }

    /**
     * The array to keep of the one kept and a call's: the call's when it is larger (the
     * kept one was too small for it) and within {@link #MAX_KEPT_LOGITS_BYTES}.
     */
    private static float @Nullable [] kept(float @Nullable [] kept, float[] logits) {
        boolean larger = kept == null || logits.length > kept.length;
        return larger && (long) logits.length * Float.BYTES <= MAX_KEPT_LOGITS_BYTES ? logits : kept;
    }

    /**
     * Commits a verified tree's accepted path and the target's next token: both caches
     * keep the path's KV (the draft's, the part of it that it was fed); the other
     * branches become holes.
     */
    void commitTree(TreeVerdict verdict, @Nullable List<TokenLogprob> roundLogprobs) {
        TreeDraft tree = treeDraft;
        int[] path = verdict.path();
        int[] targetKept = new int[path.length];
        for (int i = 0; i < path.length; i++) {
            targetKept[i] = tree.base + path[i];
        }
        targetCache.retain(tree.base, targetKept);
        // the feature head keeps only the pairs fed real features (commit rolls it back)
        if (draftCache != null && head == null && draftCache.logicalLength() >= tree.base) {
            draftCache.retain(tree.base, tree.fedPath(path));
        }
        if (path.length > drafts.length) {
            drafts = Arrays.copyOf(drafts, path.length);
            draftDistributions = Arrays.copyOf(draftDistributions, path.length);
        }
        int[] pathTokens = tree.selected.tokensOf(path);
        System.arraycopy(pathTokens, 0, drafts, 0, path.length);
        commit(path.length, verdict.nextToken(), TokenKind.ofTarget(tree.selected, path), roundLogprobs);
    }

    void addDraft(int token, float @Nullable [] distribution) {
        drafts[drafted] = token;
        draftDistributions[drafted] = distribution;
        drafted++;
        if (drafted == requestedDrafts) {
            drafting = false;
        }
    }

    /**
     * Adds deterministic drafts until the target's call (pending + drafts) carries a
     * number of tokens {@code call} allows: a target quantized with int8 activations
     * computes its rows exactly only in calls of two tokens or more, and with blocks of
     * 128 only in calls of an even number ({@code Decoder#callTokens}). The filler is
     * what prompt lookup proposes after the text and the drafts, else the last token
     * again; like any draft it is verified, so the output is unchanged.
     */
    void padToCallTokens(CallTokens call) {
        int carried = length - targetCache.logicalLength() + drafted;
        int missing = call.atLeast(carried) - carried;
        if (missing <= 0) {
            return;
        }
        if (drafted + missing > drafts.length) {
            drafts = Arrays.copyOf(drafts, drafted + missing);
            draftDistributions = Arrays.copyOf(draftDistributions, drafted + missing);
        }
        int found;
        if (drafted == 0) {
            // no drafts yet: prompt lookup writes its guesses straight into the drafts
            found = PromptLookup.DEFAULT.propose(tokens, length, missing, drafts);
        }
        else {
            // prompt lookup over the text and the drafts after it: what would follow them
            // (the tokens past length are scratch until a commit writes them)
            ensureCapacity(length + drafted);
            System.arraycopy(drafts, 0, tokens, length, drafted);
            int[] guesses = new int[missing];
            int guessed = PromptLookup.DEFAULT.propose(tokens, length + drafted, missing, guesses);
            System.arraycopy(guesses, 0, drafts, drafted, guessed);
            found = drafted + guessed;
        }
        for (int i = drafted; i < drafted + missing; i++) {
            if (i >= found) {
                drafts[i] = i > 0 ? drafts[i - 1] : tokens[length - 1];
            }
            draftDistributions[i] = null;
        }
        drafted += missing;
        fillers = missing;
    }

    /**
     * What the draft feeds next: its pending committed tokens in the round's first call,
     * then the last draft.
     */
    int[] draftInput() {
        return drafted == 0 ? pendingFor(draftCache) : new int[] { drafts[drafted - 1] };
    }

    /** What the target verifies: its pending committed tokens, then every draft. */
    int[] verificationInput() {
        int pending = length - targetCache.logicalLength();
        int[] input = Arrays.copyOfRange(tokens, targetCache.logicalLength(), length + drafted);
        System.arraycopy(drafts, 0, input, pending, drafted);
        return input;
    }

    /**
     * Commits the accepted drafts and the target's next token, and rolls both caches back
     * to the committed prefix they hold.
     */
    void commit(int accepted, int nextToken, @Nullable List<TokenLogprob> roundLogprobs) {
        commit(accepted, nextToken, TokenKind.ofTarget(drafted, accepted), roundLogprobs);
    }

    /** {@link #commit}, the target's token of kind {@code nextKind}. */
    private void commit(int accepted, int nextToken, TokenKind nextKind, @Nullable List<TokenLogprob> roundLogprobs) {
        int committedBefore = length;
        int[] newTokens = Arrays.copyOf(drafts, accepted + 1);
        newTokens[accepted] = nextToken;
        int kept = output.append(newTokens, 0, newTokens.length, nextKind, requestedDrafts, roundLogprobs);
        if (processor != null) {
            processor.resetTo(processorMark);
            for (int i = 0; i < kept; i++) {
                processor.advance(newTokens[i]);
            }
            processorMark = processor.mark();
        }
        if (grammar != null) {
            stats.recordGrammar(grammar.takeNanos());
        }
        if (logprobs != null && roundLogprobs != null) {
            logprobs.addAll(roundLogprobs.subList(0, Math.min(kept, roundLogprobs.size())));
        }
        ensureCapacity(length + kept);
        System.arraycopy(newTokens, 0, tokens, length, kept);
        length += kept;
        // The target fed the drafts; only the accepted ones are committed tokens.
        rollBack(targetCache, committedBefore + accepted);
        if (draftCache != null) {
            // the head keeps the pairs fed real features; a draft model, the accepted
            // drafts
            rollBack(draftCache, head != null ? head.realPairs() : committedBefore + accepted);
        }
    }

    /**
     * Rolls {@code cache} back to {@code kept} tokens (or what it holds, if fewer); it
     * may leave committed tokens for the next call to feed again
     * ({@link SequenceCache#rollbackOrRewind}), but not while prompt rows are still to
     * score (their count must match the pending tokens), nor with the feature head (which
     * pairs every position the target fed with its features once).
     */
    private void rollBack(SequenceCache cache, int kept) {
        int newLength = Math.min(cache.logicalLength(), kept);
        if (head == null && (scoring == null || scoring.done())) {
            cache.rollbackOrRewind(newLength, MAX_FED_AGAIN);
        }
        else {
            cache.rollbackTo(newLength);
        }
    }

    /**
     * Stops speculating for the rest of the generation (the target's state is untouched):
     * plain steps from now on.
     */
    void stopDrafting(FallbackReason reason) {
        if (draftCache == null) {
            return;
        }
        draftCache.close();
        draftCache = null;
        drafting = false;
        drafted = 0;
        fallback = reason;
    }

    GenerationResult result(String policyName) {
        return new GenerationResult(output.tokens(), output.text(), output.finishReason(), promptLength, policyName,
                stats, fallback, speculation.proposer() == null ? null : speculation.proposer().id(),
                logprobs == null ? List.of() : logprobs, scoring == null ? List.of() : scoring.logprobs());
    }

    private void ensureCapacity(int needed) {
        if (needed > tokens.length) {
            tokens = Arrays.copyOf(tokens, Math.max(needed, tokens.length * 2));
        }
    }

    @Override
    public void close() {
        if (ownsRunOptions) {
            if (request.cancellation() != null) {
                request.cancellation().unregister(runOptions);
            }
            runOptions.close();
        }
        targetCache.close();
        if (draftCache != null) {
            draftCache.close();
        }
    }

}
