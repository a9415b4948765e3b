package dev.specula.engine;

import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import dev.specula.kv.PrefixCache;
import dev.specula.kv.SequenceCache;
import dev.specula.model.Decoder;
import dev.specula.model.DecoderModel;
import dev.specula.model.StepInput;
import dev.specula.model.StepOutput;
import dev.specula.policy.DraftCandidate;
import dev.specula.policy.PlainPolicy;
import dev.specula.policy.RoundOutcome;
import dev.specula.policy.SpeculationPolicy;
import dev.specula.sampling.DraftVerifier;
import dev.specula.sampling.Distributions;
import dev.specula.sampling.Verdict;

import java.util.ArrayList;
import java.util.List;

/**
 * The decode loop: plain and speculative decoding are the same loop, plain being rounds that draft nothing.
 *
 * <pre>
 * generate(request):
 *     check the context length            (before any work)
 *     until the output ends:  step([sequence])
 *
 * step(sequences):                        every call takes all active sequences (batch-first)
 *     1. γ = policy.draftLength()         per sequence, capped by what is left to generate
 *     2. draft                            up to γ draft-model calls; each proposes one token per sequence
 *     3. verify                           ONE target call over (pending + drafts) positions per sequence
 *     4. accept                           greedy match or rejection sampling → accepted drafts + 1 token;
 *                                         commit, roll both KV caches back, stream text, policy.observe
 * </pre>
 * The first round's calls also prefill the prompt: a cache's pending tokens are fed with the round's tokens.
 * A request's {@code continuation} (tokens an earlier, failed attempt already produced) is prefilled the
 * same way, so a fallback resumes where speculation stopped.
 */
public final class SpeculativeDecoder {

    private final ModelPair models;
    /** KV of shared prompt prefixes; null = none. */
    private final PrefixCache prefixCache;

    public SpeculativeDecoder(ModelPair models) {
        this(models, null);
    }

    public SpeculativeDecoder(ModelPair models, PrefixCache prefixCache) {
        this.models = models;
        this.prefixCache = prefixCache;
    }

    /** Generates until end-of-sequence, a stop string, max new tokens or cancellation. */
    public GenerationResult generate(GenerationRequest request) {
        long start = System.nanoTime();
        SpeculationPolicy policy = request.policy().get();
        boolean speculative = models.draft().isPresent() && !(policy instanceof PlainPolicy);
        checkContext(request, speculative);
        try (Sequence sequence = open(request, policy, speculative)) {
            List<Sequence> batch = List.of(sequence);
            while (!sequence.isFinished()) {
                if (sequence.isCancelled()) {
                    sequence.output.finish(FinishReason.CANCELLED);
                    break;
                }
                if (request.cancellation() != null) {
                    request.cancellation().markProgress();
                }
                try {
                    step(batch);
                }
                catch (DraftModelException ex) {
                    sequence.stats.recordWall(System.nanoTime() - start, sequence.output.count());
                    throw new DraftModelException(ex.getMessage(), ex.getCause(), sequence.output.tokens(), sequence.stats);
                }
            }
            sequence.stats.recordWall(System.nanoTime() - start, sequence.output.count());
            storePrefix(sequence);
            return sequence.result(speculative ? policy.name() : PlainPolicy.NAME);
        }
        catch (OrtException ex) {
            throw new GenerationException("ONNX Runtime failed while generating: " + ex.getMessage(), ex);
        }
    }

    /** One round for every sequence: draft, verify in one target call, accept. A failing draft throws. */
    void step(List<Sequence> batch) throws OrtException {
        step(batch, null);
    }

    /**
     * One round for every sequence. When the draft fails and {@code draftFailureReason} is given, the sequences
     * stop speculating (reason from the function) and the round goes on as a plain step: a batch keeps going.
     */
    void step(List<Sequence> batch, java.util.function.Function<Throwable, String> draftFailureReason) throws OrtException {
        long roundStart = System.nanoTime();
        for (Sequence sequence : batch) {
            boolean canDraft = sequence.draftCache != null && sequence.draftCanRead(models.draft().orElseThrow().logitsWidth());
            int gamma = canDraft ? sequence.policy.draftLength(sequence.roundContext()) : 0;
            // a round emits up to γ + 1 tokens: never draft past the token budget (nor past the context)
            sequence.beginRound(Math.max(0, Math.min(gamma, sequence.remaining() - 1)));
        }
        try {
            draft(batch);
        }
        catch (OrtException | RuntimeException ex) {
            if (draftFailureReason != null) {
                String reason = draftFailureReason.apply(ex);
                for (Sequence sequence : batch) {
                    sequence.stopDrafting(reason);
                }
            }
            else if (anyCancelled(batch)) {
                finishCancelled(batch);
                return;
            }
            else {
                throw new DraftModelException("The draft model failed: " + ex.getMessage(), ex);
            }
        }
        List<StepOutput> verified;
        try {
            verified = verify(batch);
        }
        catch (OrtException ex) {
            if (anyCancelled(batch)) {
                finishCancelled(batch);
                return;
            }
            throw ex;
        }
        for (int i = 0; i < batch.size(); i++) {
            accept(batch.get(i), verified.get(i), roundStart);
        }
    }

    /** Draft-model calls in lockstep: each proposes the next draft token of every sequence still drafting. */
    private void draft(List<Sequence> batch) throws OrtException {
        List<Sequence> drafting = new ArrayList<>();
        for (Sequence sequence : batch) {
            if (sequence.drafting) {
                drafting.add(sequence);
            }
        }
        while (!drafting.isEmpty()) {
            List<StepInput> inputs = new ArrayList<>(drafting.size());
            for (Sequence sequence : drafting) {
                inputs.add(new StepInput(sequence.draftCache, sequence.draftInput(), 1, false, sequence.runOptions));
            }
            List<StepOutput> outputs = models.draft().orElseThrow().forward(inputs);
            List<Sequence> stillDrafting = new ArrayList<>(drafting.size());
            for (int i = 0; i < drafting.size(); i++) {
                Sequence sequence = drafting.get(i);
                StepOutput output = outputs.get(i);
                sequence.stats.recordDraftCall(output.runNanos());
                sequence.roundDraftNanos += output.runNanos();
                propose(sequence, output);
                if (sequence.drafting) {
                    stillDrafting.add(sequence);
                }
            }
            drafting = stillDrafting;
        }
    }

    /** Picks the draft token from the draft's logits (argmax, or a sample of q) unless the policy stops here. */
    private static void propose(Sequence sequence, StepOutput output) {
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
        if (!sequence.policy.shouldPropose(candidate)) {
            sequence.drafting = false;
            return;
        }
        sequence.addDraft(token, q);
        sequence.draftLogProbability = candidate.knownCumulativeLogProbability();
    }

    /** ONE target call per sequence over its pending tokens and drafts: logits of the last drafted + 1 positions. */
    private List<StepOutput> verify(List<Sequence> batch) throws OrtException {
        List<StepInput> inputs = new ArrayList<>(batch.size());
        for (Sequence sequence : batch) {
            inputs.add(new StepInput(sequence.targetCache, sequence.verificationInput(), sequence.drafted + 1,
                    sequence.policy.usesTargetHiddenState(), sequence.runOptions));
        }
        return models.targetSteps().forward(inputs);
    }

    /** Applies the acceptance rule, commits, and tells the policy. */
    private static void accept(Sequence sequence, StepOutput verified, long roundStart) {
        sequence.stats.recordTargetCall(verified.runNanos());
        Verdict verdict = sequence.sampling.isGreedy()
                ? DraftVerifier.greedy(sequence.drafts, sequence.drafted, verified.logits(), verified.width())
                : DraftVerifier.sample(sequence.drafts, sequence.drafted, sequence.draftDistributions, verified.logits(),
                        verified.width(), sequence.sampling, sequence.random);
        sequence.stats.recordRound(sequence.drafted, verdict.accepted());
        if (verified.hiddenState() != null) {
            int hidden = verified.hiddenState().length / verified.rows();
            sequence.lastHiddenState = java.util.Arrays.copyOfRange(verified.hiddenState(), verdict.accepted() * hidden,
                    (verdict.accepted() + 1) * hidden);
        }
        sequence.commit(verdict.accepted(), verdict.nextToken());
        sequence.policy.observe(new RoundOutcome(sequence.requestedDrafts, sequence.drafted, verdict.accepted(),
                sequence.roundDraftNanos, verified.runNanos(), System.nanoTime() - roundStart));
    }

    private Sequence open(GenerationRequest request, SpeculationPolicy policy, boolean speculative) throws OrtException {
        return open(request, policy, models.targetSteps().newCache(), speculative ? models.draft().orElseThrow().newCache() : null,
                null);
    }

    /** A sequence on the given caches (its own, or shares of a batch's pools stepped with {@code sharedRunOptions}). */
    Sequence open(GenerationRequest request, SpeculationPolicy policy, SequenceCache targetCache, SequenceCache draftCache,
            OrtSession.RunOptions sharedRunOptions) throws OrtException {
        DecoderModel target = models.target();
        OutputText output = new OutputText(target.tokenizer(),
                request.ignoreEos() ? java.util.Set.of() : target.config().eosTokenIds(), request.maxNewTokens(),
                request.stopStrings(), request.listener());
        if (prefixCache != null && request.continuation().length == 0) {
            prefixCache.seed(models.target().files().model().toString(), request.promptIds(), targetCache);
            if (draftCache != null) {
                prefixCache.seed(models.draft().orElseThrow().files().model().toString(), request.promptIds(), draftCache);
            }
        }
        return new Sequence(request, policy, output, targetCache, draftCache, sharedRunOptions);
    }

    /** Keeps the KV of the prompt's blocks for later requests that start the same way. */
    void storePrefix(Sequence sequence) {
        if (prefixCache == null) {
            return;
        }
        int[] prompt = sequence.request.promptIds();
        prefixCache.store(models.target().files().model().toString(), prompt, sequence.targetCache);
        if (sequence.draftCache != null) {
            prefixCache.store(models.draft().orElseThrow().files().model().toString(), prompt, sequence.draftCache);
        }
    }

    ModelPair models() {
        return models;
    }

    void checkContext(GenerationRequest request, boolean speculative) {
        int prompt = request.promptIds().length + request.continuation().length;
        Decoder limiting = models.target();
        if (speculative && models.draft().orElseThrow().contextLength() < limiting.contextLength()) {
            limiting = models.draft().orElseThrow();
        }
        if (prompt + request.maxNewTokens() > limiting.contextLength()) {
            throw new ContextLengthExceededException(prompt, request.maxNewTokens(), limiting.contextLength(),
                    limiting.files().directory().toString());
        }
    }

    private static boolean anyCancelled(List<Sequence> batch) {
        return batch.stream().anyMatch(Sequence::isCancelled);
    }

    private static void finishCancelled(List<Sequence> batch) {
        for (Sequence sequence : batch) {
            if (sequence.isCancelled()) {
                sequence.output.finish(FinishReason.CANCELLED);
            }
        }
    }
}
