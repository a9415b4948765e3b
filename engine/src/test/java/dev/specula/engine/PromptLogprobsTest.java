package dev.specula.engine;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.IntStream;

import ai.onnxruntime.OrtException;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import dev.specula.Fixtures;
import dev.specula.ForwardingDecoder;
import dev.specula.kv.KvBudget;
import dev.specula.kv.KvSequence;
import dev.specula.kv.PrefixCache;
import dev.specula.kv.PrefixCacheListener;
import dev.specula.model.Decoder;
import dev.specula.model.DecoderModel;
import dev.specula.model.MatMulKernels;
import dev.specula.model.RuntimeOptions;
import dev.specula.model.StepInput;
import dev.specula.model.StepOutput;
import dev.specula.models.tiny.TinyModels;
import dev.specula.policy.FixedPolicy;
import dev.specula.policy.PlainPolicy;
import dev.specula.proposer.ProposerKind;
import dev.specula.request.InvalidRequestException;
import dev.specula.sampling.TokenLogprob;
import dev.specula.tokenizer.PromptEncoder;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * Prompt log-probabilities ({@link GenerationRequest#promptLogprobs()}): each prompt
 * token after the first gets the target's log-probability and its most likely tokens at
 * that position, equal (within 1e-4) to a log-softmax computed here over the rows of ONE
 * target call over the whole prompt. Scoring is computed during the prefill, in calls
 * whose rows of logits stay within a bytes budget (a long prompt is split), never from a
 * cached prefix, and changes nothing in the output; {@code maxNewTokens} 0 scores the
 * prompt alone.
 */
class PromptLogprobsTest {

    private static final int TOP = 5;

    private static final double TOLERANCE = 1e-4;

    private static DecoderModel target;

    private static DecoderModel packedTarget;

    private static DecoderModel draft;

    private static DecoderModel head;

    private static List<int[]> prompts;

    @BeforeAll
    static void load() throws Exception {
        TinyModels.Pair pair = Fixtures.embeddedPair();
        target = DecoderModel.load(pair.target(), RuntimeOptions.defaults());
        packedTarget = DecoderModel.load(pair.targetPacked(), RuntimeOptions.defaults());
        draft = DecoderModel.load(pair.draft(), RuntimeOptions.defaults());
        head = DecoderModel.load(pair.head().orElseThrow(), RuntimeOptions.defaults());
        PromptEncoder encoder = new PromptEncoder(target.tokenizer(), target.chatTemplate(), "target");
        prompts = new ArrayList<>();
        for (String text : Fixtures.codePrompts(12)) {
            prompts.add(encoder.text(text));
        }
    }

    @AfterAll
    static void close() {
        target.close();
        packedTarget.close();
        draft.close();
        head.close();
    }

    @Test
    void everyPromptTokenAfterTheFirstGetsTheTargetsLogProbability() throws OrtException {
        int[] prompt = prompts.get(0);
        double[][] reference = logSoftmaxRows(target, prompt);
        SpeculativeDecoder decoder = new SpeculativeDecoder(new ModelPair(target, draft));
        for (ProposerKind proposer : new ProposerKind[] { null, ProposerKind.MODEL, ProposerKind.NGRAM }) {
            GenerationRequest.Builder request = GenerationRequest.builder(prompt)
                .maxNewTokens(24)
                .proposer(proposer)
                .policy(proposer == null ? PlainPolicy::new : () -> new FixedPolicy(3));
            GenerationResult unscored = decoder.generate(request.build());
            GenerationResult scored = decoder.generate(request.promptLogprobs(TOP).build());
            assertThat(maxDifference(scored.promptLogprobs(), prompt, reference, TOP)).as("proposer %s", proposer)
                .isLessThan(TOLERANCE);
            // scoring changes nothing in the output, and asks nothing of it
            assertThat(scored.tokenIds()).as("proposer %s", proposer).containsExactly(unscored.tokenIds());
            assertThat(scored.logprobs()).isEmpty();
            assertThat(unscored.promptLogprobs()).isEmpty();
        }
    }

    @Test
    void theTopCountIsTheRequestsAndZeroReportsTheTokenAlone() throws OrtException {
        int[] prompt = prompts.get(1);
        double[][] reference = logSoftmaxRows(target, prompt);
        GenerationResult result = new SpeculativeDecoder(new ModelPair(target, null))
            .generate(GenerationRequest.builder(prompt).maxNewTokens(4).promptLogprobs(0).logprobs(2).build());
        assertThat(maxDifference(result.promptLogprobs(), prompt, reference, 0)).isLessThan(TOLERANCE);
        assertThat(result.logprobs()).hasSize(result.tokenIds().length)
            .allSatisfy((logprob) -> assertThat(logprob.topTokens()).hasSize(2));
    }

    @Test
    void longPromptsAreScoredInCallsWhoseLogitsStayWithinTheBudget() throws OrtException {
        int[] prompt = longPrompt(0, 6);
        assertThat(prompt.length).isGreaterThan(80);
        double[][] reference = logSoftmaxRows(target, prompt);
        int budgetRows = 8;
        RecordingTarget steps = new RecordingTarget(target);
        SpeculativeDecoder decoder = new SpeculativeDecoder(new ModelPair(target, steps, draft, null), null,
                budgetRows * rowBytes(target));
        GenerationRequest.Builder request = GenerationRequest.builder(prompt)
            .maxNewTokens(16)
            .policy(() -> new FixedPolicy(3))
            .proposer(ProposerKind.MODEL);
        GenerationResult scored = decoder.generate(request.promptLogprobs(TOP).build());
        assertThat(maxDifference(scored.promptLogprobs(), prompt, reference, TOP)).isLessThan(TOLERANCE);
        // calls that score only: budgetRows prompt tokens with a row each; the first
        // round's verification adds at most γ + 1 rows to the last prompt rows
        assertThat(steps.maxRows()).isLessThanOrEqualTo(budgetRows + 3 + 1);
        assertThat(steps.callsOfRows(budgetRows)).isGreaterThanOrEqualTo((prompt.length - 1) / budgetRows - 1);
        GenerationResult unscored = new SpeculativeDecoder(new ModelPair(target, draft)).generate(request.build());
        assertThat(scored.tokenIds()).containsExactly(unscored.tokenIds());
    }

    @Test
    void batchedRequestsScoreTheirPromptsWithinOneBudgetPerCall() throws Exception {
        for (DecoderModel model : new DecoderModel[] { packedTarget, target }) {
            int budgetRows = 8;
            RecordingTarget steps = new RecordingTarget(model);
            SpeculativeDecoder decoder = new SpeculativeDecoder(new ModelPair(model, steps, draft, null), null,
                    budgetRows * rowBytes(model));
            SpeculativeDecoder alone = new SpeculativeDecoder(new ModelPair(model, draft));
            try (BatchScheduler batch = new BatchScheduler(decoder,
                    new BatchScheduler.Settings(4, 16, Duration.ofMillis(50), null), null,
                    new KvAdmission(decoder.models(), new KvBudget(Long.MAX_VALUE), Duration.ZERO))) {
                List<GenerationRequest> requests = new ArrayList<>();
                for (int i = 0; i < 4; i++) {
                    int gamma = 2 + i % 2;
                    GenerationRequest.Builder request = GenerationRequest.builder(longPrompt(i, 2))
                        .maxNewTokens(i == 3 ? 0 : 12)
                        .policy(i == 2 ? PlainPolicy::new : () -> new FixedPolicy(gamma))
                        .proposer(i == 2 ? null : ProposerKind.MODEL);
                    requests.add((i == 2 ? request : request.promptLogprobs(TOP)).build());
                }
                List<CompletableFuture<GenerationResult>> futures = new ArrayList<>();
                for (GenerationRequest request : requests) {
                    futures.add(batch.submit(request));
                }
                for (int i = 0; i < requests.size(); i++) {
                    GenerationRequest request = requests.get(i);
                    GenerationResult batched = futures.get(i).join();
                    String layout = model == packedTarget ? "packed" : "padded";
                    if (request.wantsPromptLogprobs()) {
                        assertThat(maxDifference(batched.promptLogprobs(), request.promptIds(),
                                logSoftmaxRows(model, request.promptIds()), TOP))
                            .as("%s request %d", layout, i)
                            .isLessThan(TOLERANCE);
                    }
                    if (request.maxNewTokens() > 0) {
                        assertThat(batched.tokenIds()).as("%s request %d", layout, i)
                            .containsExactly(alone.generate(request).tokenIds());
                    }
                }
            }
            if (model == packedTarget) {
                // one packed call computes the rows of every sequence: the scoring rows
                // of
                // all of them together stay within the budget (verifications add γ + 1
                // each)
                assertThat(steps.maxRowsBeyondVerification(4)).isLessThanOrEqualTo(budgetRows);
            }
        }
    }

    @Test
    void maxNewTokensZeroScoresThePromptAndGeneratesNothing() throws Exception {
        int[] prompt = prompts.get(2);
        double[][] reference = logSoftmaxRows(target, prompt);
        GenerationRequest request = GenerationRequest.builder(prompt)
            .maxNewTokens(0)
            .promptLogprobs(TOP)
            .policy(() -> new FixedPolicy(3))
            .proposer(ProposerKind.MODEL)
            .build();
        try (Engine engine = new Engine(new ModelPair(target, draft),
                new Engine.Settings(4, 16, Duration.ofMillis(10), null))) {
            for (GenerationResult result : List.of(engine.generate(request), engine.submit(request).join())) {
                assertThat(result.tokenIds()).isEmpty();
                assertThat(result.text()).isEmpty();
                assertThat(result.finishReason()).isEqualTo(FinishReason.LENGTH);
                assertThat(result.promptTokens()).isEqualTo(prompt.length);
                assertThat(maxDifference(result.promptLogprobs(), prompt, reference, TOP)).isLessThan(TOLERANCE);
            }
            // a one-token prompt has nothing to score: its answer is empty at once
            GenerationResult single = engine
                .generate(GenerationRequest.builder(new int[] { prompt[0] }).maxNewTokens(0).promptLogprobs(1).build());
            assertThat(single.tokenIds()).isEmpty();
            assertThat(single.promptLogprobs()).isEmpty();
            assertThat(single.finishReason()).isEqualTo(FinishReason.LENGTH);
        }
    }

    @Test
    void theFeatureHeadDraftsAsItDoesWithoutScoring() throws OrtException {
        int[] prompt = longPrompt(4, 3);
        double[][] reference = logSoftmaxRows(target, prompt);
        GenerationRequest.Builder request = GenerationRequest.builder(prompt)
            .maxNewTokens(32)
            .policy(() -> new FixedPolicy(3))
            .proposer(ProposerKind.GRIFFIN);
        GenerationResult unscored = new SpeculativeDecoder(ModelPair.withHead(target, null, head))
            .generate(request.build());
        for (int budgetRows : new int[] { 8, 1_000 }) {
            GenerationResult scored = new SpeculativeDecoder(ModelPair.withHead(target, null, head), null,
                    budgetRows * rowBytes(target))
                .generate(request.promptLogprobs(TOP).build());
            assertThat(maxDifference(scored.promptLogprobs(), prompt, reference, TOP)).as("%d rows", budgetRows)
                .isLessThan(TOLERANCE);
            assertThat(scored.tokenIds()).containsExactly(unscored.tokenIds());
            // the head read the same features of every prompt position: it drafted the
            // same
            assertThat(scored.stats().accepted()).as("%d rows", budgetRows).isEqualTo(unscored.stats().accepted());
            assertThat(scored.proposer()).isEqualTo("griffin");
        }
    }

    @Test
    void aCachedPrefixIsNeverReadWhenThePromptIsScored() throws OrtException {
        int[] prompt = longPrompt(6, 3);
        assertThat(prompt.length).isGreaterThan(2 * 16 + 1);
        double[][] reference = logSoftmaxRows(target, prompt);
        AtomicInteger hits = new AtomicInteger();
        PrefixCache prefixes = new PrefixCache(64L << 20, new PrefixCacheListener() {
            @Override
            public void onLookup(int hitTokens, int missTokens) {
                hits.addAndGet(hitTokens);
            }
        });
        SpeculativeDecoder decoder = new SpeculativeDecoder(new ModelPair(target, draft), prefixes);
        GenerationRequest.Builder request = GenerationRequest.builder(prompt).maxNewTokens(8);
        GenerationResult first = decoder.generate(request.build());
        GenerationResult cached = decoder.generate(request.build());
        assertThat(hits.get()).as("the prompt's blocks were cached").isPositive();
        GenerationResult scored = decoder.generate(request.promptLogprobs(TOP).build());
        assertThat(maxDifference(scored.promptLogprobs(), prompt, reference, TOP)).isLessThan(TOLERANCE);
        assertThat(scored.tokenIds()).containsExactly(first.tokenIds()).containsExactly(cached.tokenIds());
    }

    @Test
    void aTargetThatNeedsTwoTokensACallIsNeverCalledWithOne() throws OrtException {
        try (DecoderModel int8 = Fixtures.load("llama-int4-a8")) {
            assertThat(int8.callTokens().min()).isEqualTo(2);
            RecordingTarget steps = new RecordingTarget(int8);
            // a budget of one row: each scoring call still feeds two tokens
            SpeculativeDecoder decoder = new SpeculativeDecoder(new ModelPair(int8, steps, null, null), null,
                    rowBytes(int8));
            SpeculativeDecoder unscoring = new SpeculativeDecoder(new ModelPair(int8, null));
            for (int[] prompt : new int[][] { { 5, 17 }, { 5, 17, 42 }, { 5, 17, 42, 99, 7, 300, 12, 64, 8, 1 } }) {
                double[][] reference = logSoftmaxRows(int8, prompt);
                GenerationRequest.Builder request = GenerationRequest.builder(prompt).maxNewTokens(6);
                GenerationResult scored = decoder.generate(request.promptLogprobs(3).build());
                assertThat(maxDifference(scored.promptLogprobs(), prompt, reference, 3))
                    .as("%d prompt tokens", prompt.length)
                    .isLessThan(TOLERANCE);
                assertThat(scored.tokenIds()).containsExactly(unscoring.generate(request.build()).tokenIds());
            }
            assertThat(steps.minTokens()).isEqualTo(2);
        }
    }

    @Test
    void aTargetThatComputesRowsTwoAtATimeIsCalledWithEvenNumbersOfTokens() throws OrtException {
        // ONNX Runtime's MatMulNBits (Specula's 4-bit kernel computes rows one by one)
        try (DecoderModel paired = DecoderModel.load(Fixtures.model("llama-int4-b128-a8"),
                RuntimeOptions.defaults().withKernels(MatMulKernels.ONNX_RUNTIME))) {
            assertThat(paired.callTokens().multiple()).isEqualTo(2);
            SpeculativeDecoder unscoring = new SpeculativeDecoder(new ModelPair(paired, null));
            for (int[] prompt : new int[][] { { 5, 17 }, { 5, 17, 42 }, { 5, 17, 42, 99, 7, 300, 12, 64, 8, 1, 33 } }) {
                // a budget of three rows: each scoring call still feeds an even number
                RecordingTarget steps = new RecordingTarget(paired);
                SpeculativeDecoder decoder = new SpeculativeDecoder(new ModelPair(paired, steps, null, null), null,
                        3 * rowBytes(paired));
                GenerationResult scored = decoder
                    .generate(GenerationRequest.builder(prompt).maxNewTokens(6).promptLogprobs(3).build());
                assertThat(steps.tokens).as("%d prompt tokens", prompt.length)
                    .allSatisfy((call) -> assertThat(call[0] % 2).isZero());
                assertThat(scored.tokenIds()).containsExactly(
                        unscoring.generate(GenerationRequest.builder(prompt).maxNewTokens(6).build()).tokenIds());
                // nothing generated: only the last call may be odd, its one lone row the
                // last prompt token's, which nothing reads
                RecordingTarget scoringOnly = new RecordingTarget(paired);
                GenerationResult echo = new SpeculativeDecoder(new ModelPair(paired, scoringOnly, null, null), null,
                        3 * rowBytes(paired))
                    .generate(GenerationRequest.builder(prompt).maxNewTokens(0).promptLogprobs(3).build());
                List<int[]> calls = scoringOnly.tokens;
                assertThat(calls.subList(0, calls.size() - 1)).allSatisfy((call) -> assertThat(call[0] % 2).isZero());
                int fed = calls.stream().mapToInt((call) -> call[0]).sum();
                // the last prompt token's row is not needed: fed only when a call needs
                // it
                assertThat(fed).isBetween(prompt.length - 1, prompt.length);
                if (calls.get(calls.size() - 1)[0] % 2 != 0) {
                    assertThat(fed).as("an odd last call ends at the prompt's end").isEqualTo(prompt.length);
                }
                assertThat(echo.promptLogprobs()).hasSameSizeAs(scored.promptLogprobs());
                for (int i = 0; i < echo.promptLogprobs().size(); i++) {
                    assertThat(echo.promptLogprobs().get(i).logprob()).as("prompt token %d", i + 1)
                        .isEqualTo(scored.promptLogprobs().get(i).logprob());
                }
            }
        }
    }

    @Test
    void badPromptLogprobsAndMaxNewTokensNameTheField() {
        assertThatThrownBy(() -> GenerationRequest.builder(new int[] { 1, 2 }).promptLogprobs(21).build())
            .isInstanceOfSatisfying(InvalidRequestException.class,
                    (ex) -> assertThat(ex.getField()).isEqualTo("promptLogprobs"))
            .hasMessageContaining("[0, 20]");
        assertThatThrownBy(() -> GenerationRequest.builder(new int[] { 1, 2 }).promptLogprobs(-2).build())
            .isInstanceOfSatisfying(InvalidRequestException.class,
                    (ex) -> assertThat(ex.getField()).isEqualTo("promptLogprobs"));
        // nothing to generate and nothing to score
        assertThatThrownBy(() -> GenerationRequest.builder(new int[] { 1, 2 }).maxNewTokens(0).build())
            .isInstanceOfSatisfying(InvalidRequestException.class,
                    (ex) -> assertThat(ex.getField()).isEqualTo("maxNewTokens"))
            .hasMessageContaining("promptLogprobs");
    }

    /** Prompts {@code from .. from + count - 1} back to back. */
    private static int[] longPrompt(int from, int count) {
        return IntStream.range(from, from + count).flatMap((i) -> Arrays.stream(prompts.get(i))).toArray();
    }

    /** Bytes of one row of float32 logits of {@code model}. */
    private static long rowBytes(DecoderModel model) {
        return (long) model.logitsWidth() * Float.BYTES;
    }

    /**
     * The log-softmax, in doubles, of every row of ONE call of {@code model} over the
     * whole prompt: [prompt.length][width]; row i predicts prompt token i + 1.
     */
    private static double[][] logSoftmaxRows(DecoderModel model, int[] prompt) throws OrtException {
        try (KvSequence cache = model.newCache()) {
            StepOutput output = model.forward(new StepInput(cache, prompt, prompt.length, false, null));
            assertThat(output.rows()).isEqualTo(prompt.length);
            int width = output.width();
            double[][] rows = new double[output.rows()][width];
            for (int r = 0; r < output.rows(); r++) {
                double max = Double.NEGATIVE_INFINITY;
                for (int t = 0; t < width; t++) {
                    max = Math.max(max, output.logits()[r * width + t]);
                }
                double sum = 0;
                for (int t = 0; t < width; t++) {
                    sum += Math.exp(output.logits()[r * width + t] - max);
                }
                double logNormalizer = max + Math.log(sum);
                for (int t = 0; t < width; t++) {
                    rows[r][t] = output.logits()[r * width + t] - logNormalizer;
                }
            }
            return rows;
        }
    }

    /**
     * Checks that {@code scored} holds prompt tokens 1.. with {@code top} alternatives
     * each, the alternatives the most likely of the reference row (most likely first);
     * returns the largest difference of a log-probability from the reference.
     */
    private static double maxDifference(List<TokenLogprob> scored, int[] prompt, double[][] reference, int top) {
        assertThat(scored).hasSize(prompt.length - 1);
        double max = 0;
        for (int i = 1; i < prompt.length; i++) {
            TokenLogprob entry = scored.get(i - 1);
            double[] row = reference[i - 1];
            assertThat(entry.token()).as("prompt token %d", i).isEqualTo(prompt[i]);
            max = Math.max(max, Math.abs(entry.logprob() - row[prompt[i]]));
            assertThat(entry.topTokens()).hasSize(top).doesNotHaveDuplicates();
            double[] sorted = row.clone();
            Arrays.sort(sorted);
            double kth = top == 0 ? Double.NEGATIVE_INFINITY : sorted[sorted.length - top];
            for (int j = 0; j < top; j++) {
                double expected = row[entry.topTokens()[j]];
                max = Math.max(max, Math.abs(entry.topLogprobs()[j] - expected));
                assertThat(expected).as("prompt token %d, alternative %d", i, j).isGreaterThan(kth - TOLERANCE);
                if (j > 0) {
                    assertThat(entry.topLogprobs()[j]).isLessThanOrEqualTo(entry.topLogprobs()[j - 1]);
                }
            }
        }
        System.out.printf("prompt log-probabilities of %d tokens: max difference %.3g%n", prompt.length - 1, max);
        return max;
    }

    /** The target's steps, recording each call's inputs. */
    private static final class RecordingTarget extends ForwardingDecoder {

        /** Per call: each input's logits rows. */
        private final List<int[]> rows = new CopyOnWriteArrayList<>();

        /** Per call: each input's tokens. */
        private final List<int[]> tokens = new CopyOnWriteArrayList<>();

        RecordingTarget(Decoder real) {
            super(real);
        }

        @Override
        public List<StepOutput> forward(List<StepInput> batch) throws OrtException {
            rows.add(batch.stream().mapToInt(StepInput::logitsRows).toArray());
            tokens.add(batch.stream().mapToInt((input) -> input.tokens().length).toArray());
            return super.forward(batch);
        }

        int maxRows() {
            return rows.stream().flatMapToInt(Arrays::stream).max().orElse(0);
        }

        int minTokens() {
            return tokens.stream().flatMapToInt(Arrays::stream).min().orElse(0);
        }

        /** Inputs of exactly {@code count} tokens, each with a row. */
        long callsOfRows(int count) {
            long calls = 0;
            for (int c = 0; c < rows.size(); c++) {
                for (int i = 0; i < rows.get(c).length; i++) {
                    calls += rows.get(c)[i] == count && tokens.get(c)[i] == count ? 1 : 0;
                }
            }
            return calls;
        }

        /**
         * The most rows one call returned beyond a verification's {@code maxRows} per
         * input.
         */
        int maxRowsBeyondVerification(int maxRows) {
            return rows.stream()
                .mapToInt((call) -> Arrays.stream(call).map((r) -> Math.max(0, r - maxRows)).sum())
                .max()
                .orElse(0);
        }

    }

}
