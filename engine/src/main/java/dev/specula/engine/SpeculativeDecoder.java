package dev.specula.engine;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.List;

import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import org.jspecify.annotations.Nullable;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import dev.specula.kv.KvSequence;
import dev.specula.kv.KvStore;
import dev.specula.kv.PrefixCache;
import dev.specula.kv.SequenceCache;
import dev.specula.model.CallTokens;
import dev.specula.model.Decoder;
import dev.specula.model.DecoderModel;
import dev.specula.model.StepInput;
import dev.specula.model.StepOutput;
import dev.specula.policy.DraftCandidate;
import dev.specula.policy.RoundOutcome;
import dev.specula.policy.SpeculationPolicy;
import dev.specula.proposer.DraftTree;
import dev.specula.proposer.ProposerKind;
import dev.specula.proposer.TreeShape;
import dev.specula.request.InvalidRequestException;
import dev.specula.sampling.Distributions;
import dev.specula.sampling.DraftVerifier;
import dev.specula.sampling.LogitsProcessor;
import dev.specula.sampling.TokenLogprob;
import dev.specula.sampling.TreeVerdict;
import dev.specula.sampling.TreeVerifier;
import dev.specula.sampling.Verdict;

/**
 * The decode loop: plain and speculative decoding are the same loop, plain being rounds
 * that draft nothing.
 *
 * <pre>
 * generate(request):                      a batch of one, on the caller's thread
 *     check the context length            (before any work)
 *     until the output ends:  step([sequence])
 *
 * step(sequences):                        every call takes all active sequences (batch-first)
 *     1. γ = policy.draftLength()         per sequence, capped by what is left to generate
 *     2. draft                            prompt lookup or the prediction first, when they propose: γ tokens, free;
 *                                         else up to γ draft-model calls, each proposing one token per sequence.
 *                                         The draft failing, or running past the time limit (StepWatchdog),
 *                                         switches drafting off for the step's sequences: plain from then on
 *     3. verify                           ONE target call over (pending + drafts) positions per sequence
 *                                         (a target that needs 2 tokens a call gets a filler draft when alone)
 *     4. accept                           greedy match or rejection sampling → accepted drafts + 1 token;
 *                                         commit, roll both KV caches back, stream text, policy.observe
 *
 * penalties and a grammar (Sequence.processor) rewrite each draft row (2.) and each verification row (4.) for
 * the tokens before it, so the target they rewrite is what speculation reproduces
 * </pre> The first round's calls also prefill the prompt: a cache's pending tokens are
 * fed with the round's tokens. A request that scores its prompt
 * ({@link GenerationRequest#promptLogprobs()}) takes the target's row of every prompt
 * position: while more rows are left than one call may return ({@link PromptScoring}),
 * its rounds only feed the next prompt tokens with a row each (no drafts, nothing
 * committed), and its first verification returns the rest before its own.
 *
 * <p>
 * What one sequence throws (its policy, its listener) fails that sequence alone
 * ({@link Sequence#fail}); a failing target call fails the step's sequences. Only an
 * {@link Error} of a model call escapes a step.
 */
final class SpeculativeDecoder {

    private static final Logger LOG = LoggerFactory.getLogger(SpeculativeDecoder.class);

    private final ModelPair models;

    /** KV of shared prompt prefixes; null = none. */
    private final @Nullable PrefixCache prefixCache;

    /**
     * Bytes of logits one target call may return for the prompt rows it scores
     * ({@link PromptScoring#rowsPerCall}).
     */
    private final long scoringLogitsBytes;

    SpeculativeDecoder(ModelPair models) {
        this(models, null);
    }

    SpeculativeDecoder(ModelPair models, @Nullable PrefixCache prefixCache) {
        this(models, prefixCache, PromptScoring.DEFAULT_LOGITS_BYTES);
    }

    /**
     * A decoder whose target calls return at most {@code scoringLogitsBytes} of logits
     * for the prompt rows they score (but always rows for the smallest call the target
     * allows, a sequence).
     */
    SpeculativeDecoder(ModelPair models, @Nullable PrefixCache prefixCache, long scoringLogitsBytes) {
        if (scoringLogitsBytes < 1) {
            throw new IllegalArgumentException("scoringLogitsBytes must be >= 1 but was " + scoringLogitsBytes);
        }
        this.models = models;
        this.prefixCache = prefixCache;
        this.scoringLogitsBytes = scoringLogitsBytes;
    }

    /**
     * Generates until end-of-sequence, a stop string, max new tokens or cancellation; no
     * time limit.
     */
    GenerationResult generate(GenerationRequest request) {
        return generate(request, null);
    }

    /**
     * A batch of one on the caller's thread: the same step, and the same fallback, as the
     * batch thread's.
     * @param watchdog limits each round's draft phase; null: no limit
     */
    GenerationResult generate(GenerationRequest request, @Nullable StepWatchdog watchdog) {
        long start = System.nanoTime();
        SpeculationPolicy policy = request.policy().get();
        Speculation speculation = Speculation.of(request, policy, models);
        checkContext(request, speculation.proposer());
        try (Sequence sequence = open(request, policy, speculation);
                StepWatchdog.Watch watch = watchdog == null ? null : watchdog.watch(sequence.runOptions)) {
            List<Sequence> batch = List.of(sequence);
            while (!sequence.isFinished()) {
                if (sequence.isCancelled()) {
                    sequence.output.finish(FinishReason.CANCELLED);
                    break;
                }
                step(batch, watch);
            }
            if (sequence.failure != null) {
                throw rethrown(sequence.failure);
            }
            sequence.stats.recordWall(System.nanoTime() - start, sequence.output.count());
            storePrefix(sequence);
            return sequence.result(speculation.policyName(policy));
        }
        catch (OrtException ex) {
            throw new GenerationException("ONNX Runtime failed while generating: " + ex.getMessage(), ex);
        }
    }

    /**
     * One round for every sequence that is not finished: draft, verify in one target
     * call, accept.
     * @param watch limits the draft phase; null: no limit
     */
    void step(List<Sequence> batch, StepWatchdog.@Nullable Watch watch) {
        long roundStart = System.nanoTime();
        List<Sequence> live = beginRound(batch, scoringRowsPerCall(batch));
        draftPhase(live, watch);
        live.removeIf(Sequence::isFinished);
        if (live.isEmpty()) {
            return;
        }
        List<StepOutput> verified = verifyPhase(live);
        for (int i = 0; i < verified.size(); i++) {
            try {
                accept(live.get(i), verified.get(i), roundStart);
            }
            catch (Throwable ex) {
                live.get(i).fail(ex);
            }
        }
    }

    /**
     * 1. γ per sequence, from its policy; the sequences that can step this round. A
     * sequence with more prompt rows to score than {@code scoringRows} only scores.
     */
    private List<Sequence> beginRound(List<Sequence> batch, int scoringRows) {
        List<Sequence> live = new ArrayList<>(batch.size());
        for (Sequence sequence : batch) {
            if (sequence.isFinished()) {
                continue;
            }
            try {
                if (sequence.scoresOnly(scoringRows)) {
                    sequence.beginScoringRound(scoringRows, models.targetSteps().callTokens());
                    live.add(sequence);
                    continue;
                }
                boolean modelCanDraft = sequence.draftCache != null
                        && sequence.draftCanRead(drafter(sequence).logitsWidth())
                        && (sequence.head == null || sequence.headCanDraft());
                boolean canPropose = modelCanDraft || sequence.tokenProposer != null;
                int gamma = canPropose ? sequence.policy.draftLength(sequence.roundContext()) : 0;
                // a round emits up to γ + 1 tokens: never draft past the token budget
                // (nor past the context)
                TreeShape tree = sequence.request.tree();
                boolean growsTree = tree != null && (!tree.autoNodes() || models.treeSizer().growsTrees());
                sequence.beginRound(Math.max(0, Math.min(gamma, sequence.remaining() - 1)), modelCanDraft, growsTree);
                live.add(sequence);
            }
            catch (Throwable ex) {
                sequence.fail(ex);
            }
        }
        return live;
    }

    /**
     * Rows of prompt positions each sequence that scores its prompt may take in this
     * step's target call, so that the call's rows stay within the bytes budget: the
     * budget is shared by the sequences scoring together in a packed call; in a padded
     * batch every row computes as many rows as the longest, so it is shared by the
     * batch's rows. 0 when none scores.
     */
    private int scoringRowsPerCall(List<Sequence> batch) {
        int scoring = 0;
        int paddedRows = 0;
        for (Sequence sequence : batch) {
            if (sequence.scoring != null && !sequence.scoring.done() && !sequence.isFinished()) {
                scoring++;
                if (sequence.targetCache instanceof KvSequence cache
                        && cache.store().layout() == KvStore.Layout.PADDED) {
                    paddedRows = Math.max(paddedRows, cache.store().rows());
                }
            }
        }
        if (scoring == 0) {
            return 0;
        }
        Decoder target = models.targetSteps();
        return PromptScoring.rowsPerCall(scoringLogitsBytes, target.logitsWidth(),
                paddedRows > 0 ? paddedRows : scoring, target.callTokens());
    }

    /**
     * 2. The drafts, under the time limit. A failing or overrunning draft switches
     * drafting off: plain from now on.
     */
    private void draftPhase(List<Sequence> live, StepWatchdog.@Nullable Watch watch) {
        Exception failure = null;
        boolean timedOut = false;
        if (watch != null) {
            watch.beginDraft();
        }
        try {
            draft(live);
        }
        catch (OrtException | RuntimeException ex) {
            failure = ex;
            // the request goes on plainly and its result says why; the cause is here
            LOG.debug("The draft failed; {} sequence(s) go on plainly", live.size(), ex);
        }
        finally {
            timedOut = watch != null && watch.endDraft();
        }
        if (failure != null || timedOut) {
            finishCancelled(live);
            for (Sequence sequence : live) {
                if (!sequence.isFinished()) {
                    sequence.stopDrafting(timedOut ? FallbackReason.DRAFT_TIMEOUT : FallbackReason.DRAFT_ERROR);
                }
            }
        }
    }

    /**
     * 3. The verification, never time-limited. When the target call fails, the step's
     * sequences fail (or end cancelled, when their cancellation aborted it) and nothing
     * is verified.
     */
    private List<StepOutput> verifyPhase(List<Sequence> live) {
        try {
            return verify(live);
        }
        catch (OrtException | RuntimeException ex) {
            finishCancelled(live);
            for (Sequence sequence : live) {
                if (!sequence.isFinished()) {
                    sequence
                        .fail(new GenerationException("ONNX Runtime failed while verifying: " + ex.getMessage(), ex));
                }
            }
            return List.of();
        }
    }

    /**
     * Draft calls in lockstep: each proposes the next draft token of every sequence still
     * drafting, the draft model's sequences in one call and the feature head's in
     * another.
     */
    private void draft(List<Sequence> batch) throws OrtException {
        List<Sequence> byDraft = new ArrayList<>();
        List<Sequence> byHead = new ArrayList<>();
        for (Sequence sequence : batch) {
            if (sequence.drafting) {
                (sequence.head != null ? byHead : byDraft).add(sequence);
            }
        }
        if (!byDraft.isEmpty()) {
            draft(models.draft().orElseThrow(), byDraft);
        }
        if (!byHead.isEmpty()) {
            draft(models.head().orElseThrow(), byHead);
        }
    }

    private void draft(Decoder drafter, List<Sequence> drafting) throws OrtException {
        while (!drafting.isEmpty()) {
            List<StepInput> inputs = new ArrayList<>(drafting.size());
            for (Sequence sequence : drafting) {
                inputs.add(sequence.draftStep());
            }
            List<StepOutput> outputs = drafter.forward(inputs);
            List<Sequence> stillDrafting = new ArrayList<>(drafting.size());
            for (int i = 0; i < drafting.size(); i++) {
                Sequence sequence = drafting.get(i);
                StepOutput output = outputs.get(i);
                sequence.stats.recordDraftCall(output.runNanos());
                sequence.roundDraftNanos += output.runNanos();
                try {
                    if (sequence.head != null && sequence.treeDraft != null) {
                        // the next level's features
                        sequence.treeDraft.keepRegress(output.hiddenState(), output.hiddenRows());
                    }
                    else if (sequence.head != null) {
                        // the next node's feature
                        sequence.head.keepRegress(output.hiddenState());
                    }
                    if (sequence.treeDraft != null) {
                        grow(sequence, output);
                    }
                    else {
                        propose(sequence, output);
                    }
                }
                catch (Throwable ex) {
                    sequence.fail(ex);
                    continue;
                }
                if (sequence.drafting) {
                    stillDrafting.add(sequence);
                }
            }
            drafting = stillDrafting;
        }
    }

    /** The model that drafts for {@code sequence}: the feature head, or the draft. */
    private Decoder drafter(Sequence sequence) {
        return (sequence.head != null ? models.head() : models.draft()).orElseThrow();
    }

    /**
     * Picks the draft token from the draft's logits (argmax, or a sample of q) unless the
     * policy stops here.
     */
    private static void propose(Sequence sequence, StepOutput output) {
        if (sequence.processor != null) {
            // the draft's row rewritten as the target's will be: for the drafts before it
            sequence.processor.process(output.logits(), 0, output.width());
        }
        float[] q = null;
        int token;
        if (sequence.sampling.isGreedy()) {
            token = Distributions.argmax(output.logits(), 0, output.width());
        }
        else {
            q = Distributions.sampling(output.logits(), 0, output.width(), sequence.sampling);
            token = Distributions.sample(q, sequence.random);
        }
        DraftCandidate candidate = new DraftCandidate(sequence.drafted, token, output.logits(), 0, output.width(),
                sequence.draftLogProbability);
        boolean proposed = sequence.policy.shouldPropose(candidate);
        if (proposed) {
            sequence.addDraft(token, q);
            if (sequence.processor != null) {
                sequence.processor.advance(token);
            }
            sequence.draftLogProbability = candidate.knownCumulativeLogProbability();
        }
        else {
            sequence.drafting = false;
        }
        // the row is read: the next draft step may write over it
        sequence.keepDraftLogits(output.logits());
    }

    /**
     * A tree's level: each fed node's (or the root's) likeliest children join the tree;
     * when the depth is reached, the nodes to verify are selected (by measured cost, or
     * the shape's count).
     */
    private void grow(Sequence sequence, StepOutput output) {
        TreeDraft tree = sequence.treeDraft;
        tree.expand(output.logits(), output.width(), (candidate) -> sequence.processorAfter(tree, candidate));
        if (tree.expanding()) {
            return;
        }
        sequence.drafting = false;
        TreeShape shape = sequence.request.tree();
        int nodes = shape.autoNodes() ? models.treeSizer()
            .choose(tree.scoresInSelectionOrder(), tree.backboneLength(), sequence.roundDraftNanos,
                    sequence.pendingTargetTokens())
                : shape.nodes();
        tree.select(nodes);
    }

    /**
     * ONE target call over every sequence's pending tokens and drafts (a chain, or a
     * tree): logits of the last drafted + 1 positions (a tree's root and nodes). A
     * sequence whose policy throws leaves {@code batch} first.
     */
    private List<StepOutput> verify(List<Sequence> batch) throws OrtException {
        List<StepInput> inputs = new ArrayList<>(batch.size());
        CallTokens callTokens = models.targetSteps().callTokens();
        for (Iterator<Sequence> it = batch.iterator(); it.hasNext();) {
            Sequence sequence = it.next();
            try {
                if (sequence.scoringTokens > 0) {
                    inputs.add(sequence.scoringStep());
                    continue;
                }
                sequence.padToCallTokens(callTokens);
                inputs.add(sequence.verificationStep());
            }
            catch (Throwable ex) {
                sequence.fail(ex);
                it.remove();
            }
        }
        return inputs.isEmpty() ? List.of() : models.targetSteps().forward(inputs);
    }

    /**
     * 4. Applies the acceptance rule, commits, and tells the policy; a round that only
     * scored reads its rows and commits nothing.
     */
    private void accept(Sequence sequence, StepOutput output, long roundStart) {
        if (sequence.scoringTokens > 0) {
            sequence.stats.recordScoringCall(output.runNanos());
            keepFeatures(sequence, output, sequence.scoringTokens);
            sequence.acceptScoring(output);
            return;
        }
        StepOutput verified = sequence.readScoringRows(output);
        if (sequence.treeDraft != null && sequence.treeDraft.selected != null) {
            acceptTree(sequence, verified, roundStart);
            return;
        }
        sequence.stats.recordTargetCall(verified.runNanos());
        LogitsProcessor processor = sequence.processorAtCommitted();
        int width = verified.width();
        // log-probabilities read the rows before the verifier rewrites them in place
        float[] rawRows = sequence.logprobs == null ? null : processor == null ? verified.logits()
                : Arrays.copyOf(verified.logits(), (sequence.drafted + 1) * width);
        Verdict verdict = sequence.sampling.isGreedy()
                ? DraftVerifier.greedy(sequence.drafts, sequence.drafted, verified.logits(), width, processor)
                : DraftVerifier.sample(sequence.drafts, sequence.drafted, sequence.draftDistributions,
                        verified.logits(), width, sequence.sampling, sequence.random, processor);
        sequence.stats.recordRound(sequence.drafted, verdict.accepted());
        keepFeatures(sequence, verified, sequence.verifiedPending + verdict.accepted());
        keepLastHiddenState(sequence, verified, verdict.accepted());
        sequence.commit(verdict.accepted(), verdict.nextToken(),
                rawRows == null ? null : logprobs(sequence, verdict, rawRows, width));
        // the policy hears of its proposer's drafts only: a filler is the engine's
        int proposed = sequence.drafted - sequence.fillers;
        sequence.policy
            .observe(new RoundOutcome(sequence.requestedDrafts, proposed, Math.min(verdict.accepted(), proposed),
                    sequence.roundDraftNanos, verified.runNanos(), System.nanoTime() - roundStart));
        if (informsTreeSizer(sequence, sequence.drafted)) {
            // the chain the draft model drafted in a tree's place
            models.treeSizer().observeRound(false, verdict.accepted() + 1, System.nanoTime() - roundStart);
        }
        sequence.keepVerificationLogits(verified.logits());
    }

    /**
     * Whether a round tells the tree sizer anything: the draft model drafted it for a
     * request whose trees the sizer sizes, and its call carried those drafts alone (and
     * the token before them). A round that also fed the prompt (or a long catch-up) says
     * nothing of a verification's cost.
     */
    private static boolean informsTreeSizer(Sequence sequence, int verifiedDrafts) {
        TreeShape shape = sequence.request.tree();
        return shape != null && shape.autoNodes() && sequence.modelDrafts
                && sequence.lastVerifiedTokens - verifiedDrafts <= 2;
    }

    /**
     * 4, for a tree: the accepted path (greedy: the longest matching the target's argmax;
     * sampling: recursive rejection), committed with its KV; the rest of the tree becomes
     * holes.
     */
    private void acceptTree(Sequence sequence, StepOutput verified, long roundStart) {
        sequence.stats.recordTargetCall(verified.runNanos());
        TreeDraft draft = sequence.treeDraft;
        DraftTree tree = draft.selected;
        LogitsProcessor processor = sequence.processorAtCommitted();
        int width = verified.width();
        float[] rawRows = sequence.logprobs == null ? null
                : processor == null ? verified.logits() : Arrays.copyOf(verified.logits(), (tree.size() + 1) * width);
        TreeVerdict verdict = sequence.sampling.isGreedy()
                ? TreeVerifier.greedy(tree, verified.logits(), width, processor)
                : TreeVerifier.sample(tree, verified.logits(), width, sequence.sampling, sequence.random, processor);
        sequence.stats.recordTreeRound(tree.size(), tree.maxDepth(), verdict.accepted());
        if (sequence.head != null && sequence.draftCache != null && verified.hiddenState() != null) {
            // the pending tokens' rows, then the accepted path's nodes'
            sequence.head.append(verified.hiddenState(), 0, sequence.verifiedPending);
            for (int node : verdict.path()) {
                sequence.head.append(verified.hiddenState(), sequence.verifiedPending + node, 1);
            }
        }
        keepLastHiddenState(sequence, verified, verdict.lastRow());
        List<TokenLogprob> roundLogprobs = null;
        if (rawRows != null) {
            roundLogprobs = new ArrayList<>(verdict.accepted() + 1);
            int row = 0;
            for (int i = 0; i <= verdict.accepted(); i++) {
                int token = i < verdict.accepted() ? tree.token(verdict.path()[i]) : verdict.nextToken();
                roundLogprobs.add(TokenLogprob.of(rawRows, row * width, width, token, sequence.request.logprobs()));
                row = i < verdict.accepted() ? 1 + verdict.path()[i] : row;
            }
        }
        boolean informsSizer = informsTreeSizer(sequence, tree.size());
        if (informsSizer) {
            models.treeSizer()
                .observe(tree, verdict, draft.offBackbone(), sequence.lastVerifiedTokens, verified.runNanos());
        }
        sequence.commitTree(verdict, roundLogprobs);
        int chainDrafted = Math.min(sequence.requestedDrafts, tree.maxDepth());
        sequence.policy.observe(new RoundOutcome(sequence.requestedDrafts, chainDrafted, verdict.accepted(),
                sequence.roundDraftNanos, verified.runNanos(), System.nanoTime() - roundStart));
        if (informsSizer) {
            models.treeSizer().observeRound(true, verdict.accepted() + 1, System.nanoTime() - roundStart);
        }
        sequence.keepVerificationLogits(verified.logits());
    }

    /**
     * Gives the feature head the target's features of the positions now committed: the
     * first {@code committed} rows the verification fed.
     */
    private static void keepFeatures(Sequence sequence, StepOutput verified, int committed) {
        if (sequence.head != null && sequence.draftCache != null && verified.hiddenState() != null) {
            sequence.head.append(verified.hiddenState(), 0, committed);
        }
    }

    /**
     * Keeps the target's last_hidden_state row of logits row {@code row} (the one that
     * predicted the last committed token), for the policy.
     */
    private static void keepLastHiddenState(Sequence sequence, StepOutput verified, int row) {
        float[] hidden = verified.hiddenState();
        if (hidden != null) {
            int width = verified.hiddenSize();
            // the hidden rows end with the logits rows
            int first = verified.hiddenRows() - verified.rows() + row;
            sequence.lastHiddenState = Arrays.copyOfRange(hidden, first * width, (first + 1) * width);
        }
    }

    /**
     * The log-probabilities of the round's tokens: each from the target's row at its
     * position (accepted drafts, then the target's own token).
     */
    private static List<TokenLogprob> logprobs(Sequence sequence, Verdict verdict, float[] rows, int width) {
        List<TokenLogprob> round = new ArrayList<>(verdict.accepted() + 1);
        for (int i = 0; i <= verdict.accepted(); i++) {
            int token = i < verdict.accepted() ? sequence.drafts[i] : verdict.nextToken();
            round.add(TokenLogprob.of(rows, i * width, width, token, sequence.request.logprobs()));
        }
        return round;
    }

    private Sequence open(GenerationRequest request, SpeculationPolicy policy, Speculation speculation)
            throws OrtException {
        int maxTokens = request.maxTokens();
        return open(request, policy, speculation, request.listener(), models.targetSteps().newCache(maxTokens),
                speculation.drafter(models).map((drafter) -> drafter.newCache(maxTokens)).orElse(null), null);
    }

    /**
     * A sequence on the given caches (its own, or shares of a batch's pools stepped with
     * {@code sharedRunOptions}), streaming its text to {@code listener} (the request's
     * own, or its output queue in a batch).
     */
    Sequence open(GenerationRequest request, SpeculationPolicy policy, Speculation speculation,
            @Nullable TokenStreamListener listener, SequenceCache targetCache, @Nullable SequenceCache draftCache,
            OrtSession.@Nullable RunOptions sharedRunOptions) throws OrtException {
        DecoderModel target = models.target();
        OutputText output = new OutputText(target.tokenizer(),
                request.ignoreEos() ? java.util.Set.of() : target.config().eosTokenIds(), request.maxNewTokens(),
                request.stopStrings(), listener);
        // the feature head needs the target's features of every prompt position, and
        // scoring the prompt its rows: a cached prefix would skip them
        if (prefixCache != null && !speculation.usesHead()) {
            if (!request.wantsPromptLogprobs()) {
                prefixCache.seed(models.target().kvIdentity(), request.promptIds(), targetCache);
            }
            if (draftCache != null) {
                prefixCache.seed(models.draft().orElseThrow().kvIdentity(), request.promptIds(), draftCache);
            }
        }
        HeadFeatures head = speculation.usesHead() && draftCache != null
                ? new HeadFeatures(models.head().orElseThrow().hiddenSize()) : null;
        return new Sequence(request, policy, speculation, output, targetCache, draftCache, head, sharedRunOptions);
    }

    /** Keeps the KV of the prompt's blocks for later requests that start the same way. */
    void storePrefix(Sequence sequence) {
        if (prefixCache == null) {
            return;
        }
        int[] prompt = sequence.request.promptIds();
        prefixCache.store(models.target().kvIdentity(), prompt, sequence.targetCache);
        if (sequence.draftCache != null && sequence.head == null) {
            prefixCache.store(models.draft().orElseThrow().kvIdentity(), prompt, sequence.draftCache);
        }
    }

    ModelPair models() {
        return models;
    }

    /**
     * Refuses a request that does not fit the models, before any work.
     * @param proposer the request's proposer; null: plain decoding
     */
    void checkContext(GenerationRequest request, @Nullable ProposerKind proposer) {
        request.penalties().checkVocabulary(models.target().logitsWidth());
        checkTree(request);
        int prompt = request.promptIds().length;
        Decoder limiting = models.target();
        Decoder drafter = proposer == null ? null : proposer.usesHead() ? models.head().orElseThrow()
                : proposer.usesModel() ? models.draft().orElseThrow() : null;
        if (drafter != null && drafter.contextLength() < limiting.contextLength()) {
            limiting = drafter;
        }
        if (prompt + request.maxNewTokens() > limiting.contextLength()) {
            throw new ContextLengthExceededException(prompt, request.maxNewTokens(), limiting.contextLength(),
                    limiting.files().directory().toString());
        }
    }

    /**
     * Refuses a draft tree nobody can draft or verify, naming the request's
     * {@code draftShape}: the proposer must be the draft model, and both models' graphs
     * must take an attention bias. Measures the target for {@code auto} nodes (once).
     */
    private void checkTree(GenerationRequest request) {
        if (request.tree() == null) {
            return;
        }
        ProposerKind proposer = Speculation.proposerOf(request, models);
        if (!proposer.usesDrafter()) {
            throw new InvalidRequestException("draftShape",
                    "A draft tree shapes a model's proposals, and the proposer '" + proposer
                            + "' drafts without one: use the proposer 'model', 'model+ngram' or 'griffin', "
                            + "or draft chains");
        }
        Decoder drafter = (proposer.usesHead() ? models.head() : models.draft()).orElseThrow();
        for (Decoder model : new Decoder[] { models.targetSteps(), drafter }) {
            if (!model.supportsTrees()) {
                throw new InvalidRequestException("draftShape",
                        "A draft tree needs the target's and the drafting model's packed graphs (an attention_bias "
                                + "input, and exact holes), and " + model.files().model() + " is not one: load "
                                + "model_packed.onnx (python -m specula_tools export --packed), or draft chains");
            }
        }
        if (request.tree().autoNodes()) {
            models.treeSizer();
        }
    }

    /**
     * Ends the cancelled sequences (a failed run may be their cancellation's doing: it
     * terminated their run).
     */
    private static void finishCancelled(List<Sequence> batch) {
        for (Sequence sequence : batch) {
            if (sequence.isCancelled() && !sequence.isFinished()) {
                sequence.output.finish(FinishReason.CANCELLED);
            }
        }
    }

    /** What a sequence threw, as thrown to the caller of {@link #generate}. */
    static RuntimeException rethrown(Throwable failure) {
        if (failure instanceof Error error) {
            throw error;
        }
        if (failure instanceof RuntimeException runtime) {
            return runtime;
        }
        return new GenerationException("Generation failed: " + failure.getMessage(), failure);
    }

}
