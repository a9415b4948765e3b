package dev.specula.engine;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.function.Supplier;

import ai.onnxruntime.OrtException;
import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import dev.specula.Fixtures;
import dev.specula.ForwardingDecoder;
import dev.specula.kv.KvSequence;
import dev.specula.model.CallTokens;
import dev.specula.model.DecoderModel;
import dev.specula.model.MatMulKernels;
import dev.specula.model.RuntimeOptions;
import dev.specula.model.StepInput;
import dev.specula.model.StepOutput;
import dev.specula.policy.FixedPolicy;
import dev.specula.policy.PlainPolicy;
import dev.specula.policy.SpeculationPolicy;
import dev.specula.proposer.ProposerKind;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * A target whose weights are int4 and whose activations are quantized to int8 inside the
 * kernel ({@code quantize --scheme int4-b32-a8}: MatMulNBits accuracy_level 4,
 * fixtures/models/llama-int4-a8) computes a row exactly the same in every call of two
 * tokens or more, but differently in a call of one (ONNX Runtime's one-row paths). Its
 * graphs say so ({@code specula.min_call_tokens = 2}); the engine then never calls it
 * with one token, so speculative output equals plain output (which obeys the same rule).
 *
 * <p>
 * With blocks of 128 ({@code int4-b128-a8} and {@code int8-b128-a8},
 * fixtures/models/llama-int4-b128-a8 and llama-int8-b128-a8) ONNX Runtime computes the
 * rows two at a time, and the last row of an odd call alone, a little differently, which
 * the next layer's int8 rounding can magnify. Its graphs also say
 * {@code specula.call_tokens_multiple = 2}; the engine then makes every call carry an
 * even number of tokens (a filler draft, prefill chunks of even sizes).
 *
 * <p>
 * Those rules are ONNX Runtime's {@code MatMulNBits}' ({@code specula.runtime.kernels}
 * onnx-runtime here). On Specula's 4- and 8-bit kernels ({@code PanelMatMulQ4},
 * {@code PanelMatMulQ8}, the default where the kernel library runs) a row is the same
 * bits in every call of two tokens or more, odd ones too: the even rule goes, the
 * two-token minimum stays (a one-token call takes ONNX Runtime's one-row float paths in
 * the attention).
 */
class Int8ActivationLosslessTest {

    private static final int NEW_TOKENS = 32;

    private static DecoderModel target;

    private static DecoderModel packedTarget;

    private static DecoderModel floatDraft;

    /**
     * {@code int4-b128-a8} and {@code int8-b128-a8}: rows computed two at a time; each
     * fixture's plain and packed graphs.
     */
    private static final List<String> PAIRED = List.of("llama-int4-b128-a8", "llama-int8-b128-a8");

    private static final Map<String, List<DecoderModel>> pairedTargets = new LinkedHashMap<>();

    private static final RuntimeOptions ONNX_RUNTIME = RuntimeOptions.defaults()
        .withKernels(MatMulKernels.ONNX_RUNTIME);

    private static final RuntimeOptions SPECULA = RuntimeOptions.defaults().withKernels(MatMulKernels.SPECULA);

    /** The 4-bit fixtures' plain and packed graphs on Specula's kernel. */
    private static final List<DecoderModel> speculaTargets = new ArrayList<>();

    private static List<int[]> prompts;

    @BeforeAll
    static void load() throws Exception {
        target = DecoderModel.load(Fixtures.model("llama-int4-a8"), ONNX_RUNTIME);
        packedTarget = DecoderModel.load(Fixtures.model("llama-int4-a8").resolve("model_packed.onnx"), ONNX_RUNTIME);
        floatDraft = Fixtures.load("llama");
        for (String name : PAIRED) {
            pairedTargets.put(name, List.of(DecoderModel.load(Fixtures.model(name), ONNX_RUNTIME),
                    DecoderModel.load(Fixtures.model(name).resolve("model_packed.onnx"), ONNX_RUNTIME)));
        }
        for (String name : List.of("llama-int4-a8", "llama-int4-b128-a8", "llama-int8-b128-a8", "llama-int8-sym-a8")) {
            speculaTargets.add(DecoderModel.load(Fixtures.model(name), SPECULA));
            speculaTargets.add(DecoderModel.load(Fixtures.model(name).resolve("model_packed.onnx"), SPECULA));
        }
        prompts = new ArrayList<>();
        for (String text : Fixtures.codePrompts(16)) {
            prompts.add(target.tokenizer().encode(text, true));
        }
        // one-token and three-token prompts: their first calls must still carry two
        // tokens
        // (an even number for blocks of 128)
        prompts.add(new int[] { prompts.get(0)[0] });
        prompts.add(Arrays.copyOf(prompts.get(1), 3));
    }

    @AfterAll
    static void close() {
        target.close();
        packedTarget.close();
        floatDraft.close();
        pairedTargets.values().forEach((models) -> models.forEach(DecoderModel::close));
        speculaTargets.forEach(DecoderModel::close);
    }

    @Test
    void theGraphsSayTheyNeedTwoTokensACall() throws Exception {
        JsonNode quantization = Fixtures.json(Fixtures.model("llama-int4-a8").resolve("export_info.json"))
            .path("quantization");
        assertThat(quantization.path("scheme").asText()).isEqualTo("int4-b32-a8");
        assertThat(quantization.path("accuracy_level").asInt()).isEqualTo(4);
        // its token table too (GatherBlockQuantized), which ONNX Runtime Java must run
        assertThat(quantization.path("token_table").asText()).startsWith("8-bit");
        assertThat(Files.readString(Fixtures.model("llama-int4-a8").resolve("model.onnx"), StandardCharsets.ISO_8859_1))
            .contains("GatherBlockQuantized");
        assertThat(target.callTokens()).isEqualTo(new CallTokens(2, 1));
        assertThat(packedTarget.callTokens()).isEqualTo(new CallTokens(2, 1));
        assertThat(floatDraft.callTokens()).isEqualTo(CallTokens.ANY);
    }

    @Test
    void everyTargetCallCarriesTwoTokensAndSpeculationChangesNothing() {
        CallSizes sizes = new CallSizes(target);
        GenerationStats stats = speculationEqualsPlain(target, sizes);
        assertThat(sizes.smallest).as("the fewest tokens of a target call").isGreaterThanOrEqualTo(2);
        assertThat(stats.accepted()).isPositive();
    }

    /**
     * The filler a two-token target's plain round verifies is the engine's, not the
     * policy's: a policy that asked for no drafts hears that it drafted none (else
     * goodput would credit the filler's acceptance to its draft, and the cost of a round
     * that must verify two tokens to γ = 1, and keep its γ too short).
     */
    @Test
    void aPolicyThatDraftsNothingIsToldItDraftedNothing() {
        List<dev.specula.policy.RoundOutcome> outcomes = new ArrayList<>();
        SpeculationPolicy never = new SpeculationPolicy() {
            @Override
            public String name() {
                return "never";
            }

            @Override
            public int draftLength(dev.specula.policy.RoundContext context) {
                return 0;
            }

            @Override
            public void observe(dev.specula.policy.RoundOutcome outcome) {
                outcomes.add(outcome);
            }
        };
        SpeculativeDecoder decoder = new SpeculativeDecoder(new ModelPair(target, floatDraft));
        GenerationResult result = generate(decoder, prompts.get(2), () -> never, ProposerKind.NGRAM);
        assertThat(result.stats().drafted()).as("fillers were verified").isPositive();
        assertThat(outcomes).isNotEmpty()
            .allSatisfy((outcome) -> assertThat(outcome.drafted()).as("drafted, as the policy sees it").isZero())
            .allSatisfy((outcome) -> assertThat(outcome.accepted()).isZero());
    }

    @Test
    void prefillChunksNeverLeaveOneTokenAlone() throws OrtException {
        // 4-token chunks: prompts of 9 and 13 tokens would end in a one-token chunk
        try (DecoderModel chunked = DecoderModel.load(Fixtures.model("llama-int4-a8"),
                ONNX_RUNTIME.withPrefillChunkTokens(4))) {
            for (int length : new int[] { 5, 9, 13 }) {
                int[] prompt = Arrays.copyOf(prompts.get(1), length);
                assertThat(lastRow(chunked, prompt)).as("%d tokens in 4-token chunks", length)
                    .containsExactly(lastRow(target, prompt));
            }
        }
    }

    @Test
    void batchesGiveEachRequestThePlainOutput() {
        assertBatchesGiveThePlainOutput(List.of(packedTarget, target));
    }

    /**
     * 8 requests at once (fixed γ 1-3 and plain, the draft model or prompt lookup) each
     * decode as alone.
     */
    private static void assertBatchesGiveThePlainOutput(List<DecoderModel> models) {
        for (DecoderModel model : models) {
            SpeculativeDecoder alone = new SpeculativeDecoder(new ModelPair(model, null));
            try (Engine batch = new Engine(new ModelPair(model, floatDraft),
                    new Engine.Settings(8, 64, Duration.ofMillis(20), Duration.ofSeconds(30)))) {
                List<CompletableFuture<GenerationResult>> futures = new ArrayList<>();
                for (int i = 0; i < 8; i++) {
                    int gamma = 1 + i % 4;
                    Supplier<SpeculationPolicy> policy = (i % 4 == 3) ? PlainPolicy::new : () -> new FixedPolicy(gamma);
                    futures.add(batch.submit(GenerationRequest.builder(prompts.get(i))
                        .maxNewTokens(NEW_TOKENS)
                        .ignoreEos(true)
                        .policy(policy)
                        .proposer(i % 2 == 0 ? null : ProposerKind.NGRAM)
                        .build()));
                }
                for (int i = 0; i < futures.size(); i++) {
                    assertThat(futures.get(i).join().tokenIds()).as("%s request %d", model.files().model(), i)
                        .containsExactly(generate(alone, prompts.get(i), PlainPolicy::new, null).tokenIds());
                }
            }
        }
    }

    @Test
    void withBlocksOf128TheGraphsSayEveryCallCarriesAnEvenNumber() throws Exception {
        for (String name : PAIRED) {
            JsonNode quantization = Fixtures.json(Fixtures.model(name).resolve("export_info.json"))
                .path("quantization");
            assertThat(quantization.path("scheme").asText()).isEqualTo(name.substring("llama-".length()));
            assertThat(quantization.path("block_size").asInt()).isEqualTo(128);
            for (DecoderModel model : pairedTargets.get(name)) {
                assertThat(model.callTokens()).as(name).isEqualTo(new CallTokens(2, 2));
                assertThat(model.holesAreExact()).as("its sequences step alone, compact").isFalse();
            }
        }
    }

    /** Why the rule: the same row, last of an odd call, against inside an even one. */
    @Test
    void aRowAloneAtTheEndOfAnOddCallComputesOtherLogits() throws OrtException {
        for (String name : PAIRED) {
            DecoderModel model = pairedTargets.get(name).get(0);
            int differing = 0;
            for (int[] prompt : prompts.subList(0, 16)) {
                if (prompt.length < 10) {
                    continue;
                }
                // rows of tokens 6..9 over the same 6-token past: the third row last of a
                // 3-token call, and inside calls of 4 and of 2 + 2
                float[] odd = rowOf(model, prompt, 9, 2);
                float[] even = rowOf(model, prompt, 10, 2);
                assertThat(rowOf(model, prompt, 8, 0)).as("%s: the first row of calls of 2 and of 4", name)
                    .containsExactly(rowOf(model, prompt, 10, 0));
                differing += Arrays.equals(odd, even) ? 0 : 1;
            }
            assertThat(differing).as("%s: prompts whose row differs", name).isPositive();
        }
    }

    @Test
    void withBlocksOf128EveryTargetCallIsEvenAndSpeculationChangesNothing() {
        for (List<DecoderModel> models : pairedTargets.values()) {
            for (DecoderModel model : models) {
                CallSizes sizes = new CallSizes(model);
                GenerationStats stats = speculationEqualsPlain(model, sizes);
                assertThat(sizes.odd).as("target calls of an odd number of tokens").isEmpty();
                assertThat(stats.accepted()).isPositive();
            }
        }
    }

    @Test
    void withBlocksOf128PrefillChunksAreCutToEvenSizes() throws OrtException {
        for (String name : PAIRED) {
            // 5-token chunks would feed 10 tokens as 5 + 5, the fifth row alone at its
            // end
            try (DecoderModel chunked = DecoderModel.load(Fixtures.model(name),
                    ONNX_RUNTIME.withPrefillChunkTokens(5))) {
                for (int length : new int[] { 8, 10, 12, 14 }) {
                    int[] prompt = Arrays.copyOf(prompts.get(1), length);
                    assertThat(lastRow(chunked, prompt)).as("%s: %d tokens in 5-token chunks", name, length)
                        .containsExactly(lastRow(pairedTargets.get(name).get(0), prompt));
                }
            }
        }
    }

    @Test
    void onSpeculasKernelOddCallsAreAllowedAndSpeculationChangesNothing() {
        for (DecoderModel model : speculaTargets) {
            assertThat(model.quantizedSpeculaMatMuls()).as(model.files().model().toString()).isPositive();
            assertThat(model.callTokens()).isEqualTo(new CallTokens(2, 1));
            assertThat(model.holesAreExact()).as("int8 activations: its sequences step alone, compact").isFalse();
            CallSizes sizes = new CallSizes(model);
            GenerationStats stats = speculationEqualsPlain(model, sizes);
            assertThat(sizes.smallest).as("the fewest tokens of a target call").isGreaterThanOrEqualTo(2);
            assertThat(sizes.odd).as("target calls of an odd number of tokens").isNotEmpty();
            assertThat(stats.accepted()).isPositive();
        }
    }

    /**
     * A 4-bit fused packed graph whose matrix products and attention all run on Specula's
     * kernels: one-token calls, and speculation still changes nothing.
     */
    @Test
    void onSpeculasKernelsThroughoutOneTokenCallsAreAllowedAndSpeculationChangesNothing() {
        try (DecoderModel model = DecoderModel.load(Fixtures.model("llama-fused-packed-int4-b128-a8"), SPECULA)) {
            assertThat(model.callTokens()).isEqualTo(CallTokens.ANY);
            CallSizes sizes = new CallSizes(model);
            GenerationStats stats = speculationEqualsPlain(model, sizes);
            assertThat(sizes.smallest).as("one-token target calls").isEqualTo(1);
            assertThat(stats.accepted()).isPositive();
            assertBatchesGiveThePlainOutput(List.of(model));
        }
    }

    @Test
    void onSpeculasKernelBatchesAndOddPrefillChunksGiveThePlainOutput() throws OrtException {
        assertBatchesGiveThePlainOutput(speculaTargets);
        for (String name : List.of("llama-int4-a8", "llama-int4-b128-a8")) {
            try (DecoderModel whole = DecoderModel.load(Fixtures.model(name), SPECULA);
                    DecoderModel chunked = DecoderModel.load(Fixtures.model(name), SPECULA.withPrefillChunkTokens(5))) {
                for (int length : new int[] { 8, 10, 12, 14 }) {
                    int[] prompt = Arrays.copyOf(prompts.get(1), length);
                    assertThat(lastRow(chunked, prompt)).as("%s: %d tokens in 5-token chunks", name, length)
                        .containsExactly(lastRow(whole, prompt));
                }
            }
        }
    }

    /**
     * Every prompt decoded plain, then with fixed γ 1, 2, 3, 4 and 7 and the draft model
     * or prompt lookup: the same tokens; the speculative runs' statistics.
     */
    private static GenerationStats speculationEqualsPlain(DecoderModel model, CallSizes sizes) {
        SpeculativeDecoder plainDecoder = new SpeculativeDecoder(new ModelPair(model, sizes, null));
        SpeculativeDecoder speculative = new SpeculativeDecoder(new ModelPair(model, sizes, floatDraft));
        GenerationStats stats = new GenerationStats();
        for (int p = 0; p < prompts.size(); p++) {
            int[] plain = generate(plainDecoder, prompts.get(p), PlainPolicy::new, null).tokenIds();
            for (int gamma : new int[] { 1, 2, 3, 4, 7 }) {
                for (ProposerKind proposer : List.of(ProposerKind.MODEL, ProposerKind.NGRAM)) {
                    GenerationResult result = generate(speculative, prompts.get(p), () -> new FixedPolicy(gamma),
                            proposer);
                    assertThat(result.tokenIds())
                        .as("%s prompt %d, γ %d, %s", model.files().model(), p, gamma, proposer)
                        .containsExactly(plain);
                    stats.add(result.stats());
                }
            }
        }
        return stats;
    }

    private static GenerationResult generate(SpeculativeDecoder decoder, int[] prompt,
            Supplier<? extends SpeculationPolicy> policy, ProposerKind proposer) {
        return decoder.generate(GenerationRequest.builder(prompt)
            .maxNewTokens(NEW_TOKENS)
            .ignoreEos(true)
            .policy(policy)
            .proposer(proposer)
            .build());
    }

    private static float[] lastRow(DecoderModel model, int[] prompt) throws OrtException {
        try (var cache = model.newCache()) {
            StepOutput out = model.forward(new StepInput(cache, prompt, 1, false, null));
            return out.logits();
        }
    }

    /**
     * Row {@code row} of one call feeding {@code prompt[6, end)} over the first 6 tokens
     * (fed in one call).
     */
    private static float[] rowOf(DecoderModel model, int[] prompt, int end, int row) throws OrtException {
        try (KvSequence cache = model.newCache()) {
            model.forward(new StepInput(cache, Arrays.copyOf(prompt, 6), 1, false, null));
            int rows = end - 6;
            StepOutput output = model
                .forward(new StepInput(cache, Arrays.copyOfRange(prompt, 6, end), rows, false, null));
            int width = output.width();
            return Arrays.copyOfRange(output.logits(), row * width, (row + 1) * width);
        }
    }

    /**
     * The target's steps, recording the fewest tokens a call carried and the calls of an
     * odd number.
     */
    private static final class CallSizes extends ForwardingDecoder {

        int smallest = Integer.MAX_VALUE;

        final List<Integer> odd = new ArrayList<>();

        CallSizes(DecoderModel delegate) {
            super(delegate);
        }

        @Override
        public List<StepOutput> forward(List<StepInput> batch) throws OrtException {
            for (StepInput input : batch) {
                smallest = Math.min(smallest, input.tokens().length);
                if (input.tokens().length % 2 != 0) {
                    odd.add(input.tokens().length);
                }
            }
            return super.forward(batch);
        }

    }

}
