package dev.specula.model;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.stream.Stream;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import dev.specula.Fixtures;
import dev.specula.kv.KvSequence;
import dev.specula.sampling.Distributions;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * Loading with Specula's MatMul kernels: a 151,936-token vocabulary whose tied
 * {@code lm_head} is a Transpose of the embedding, prefilled from a 2,000-token prompt;
 * the logits against ONNX Runtime's MatMul; quantized graphs and other providers.
 */
class SpeculaKernelsTest {

    private static final RuntimeOptions SPECULA = RuntimeOptions.defaults().withKernels(MatMulKernels.SPECULA);

    @Test
    void aQwenSizedVocabularyDecodesATwoThousandTokenPromptLikeTransformers() throws Exception {
        JsonNode reference = Fixtures.json(Fixtures.model("qwen-vocab").resolve("reference.json"));
        int[] prompt = LargeVocabularyTest.ints(reference.path("prompt_ids"));
        int[] expected = LargeVocabularyTest.ints(reference.path("greedy_ids"));
        try (DecoderModel model = DecoderModel.load(Fixtures.model("qwen-vocab").resolve("model.onnx"), SPECULA);
                KvSequence cache = model.newCache()) {
            assertThat(model.kernelsInUse()).isEqualTo(MatMulKernels.SPECULA);
            int[] greedy = new int[expected.length];
            StepOutput output = model.forward(new StepInput(cache, prompt, 1, false, null));
            for (int i = 0; i < expected.length; i++) {
                greedy[i] = Distributions.argmax(output.logits(), 0, output.width());
                output = model.forward(new StepInput(cache, new int[] { greedy[i] }, 1, false, null));
            }
            assertThat(greedy).containsExactly(expected);
        }
    }

    /**
     * Hugging Face's cache: a snapshot directory of symbolic links to blobs named by hash
     * elsewhere. The rewritten graph is loaded from bytes, whose external data ONNX
     * Runtime would resolve only inside one directory: the engine maps it itself.
     */
    @Test
    void aSnapshotOfSymbolicLinksToBlobsLoadsAndDecodesAsTheDirectoryItself(@TempDir Path cache) throws Exception {
        Path fixture = Fixtures.model("qwen-vocab");
        Path blobs = Files.createDirectories(cache.resolve("blobs"));
        Path snapshot = Files.createDirectories(cache.resolve("snapshots").resolve("0123abc"));
        try (Stream<Path> files = Files.list(fixture)) {
            for (Path file : files.toList()) {
                Path blob = Files.copy(file, blobs.resolve(Integer.toHexString(file.getFileName().hashCode())));
                Files.createSymbolicLink(snapshot.resolve(file.getFileName()), snapshot.relativize(blob));
            }
        }
        JsonNode reference = Fixtures.json(fixture.resolve("reference.json"));
        int[] prompt = Arrays.copyOf(LargeVocabularyTest.ints(reference.path("prompt_ids")), 300);
        try (DecoderModel linked = DecoderModel.load(snapshot.resolve("model.onnx"), SPECULA);
                DecoderModel plain = DecoderModel.load(fixture.resolve("model.onnx"),
                        RuntimeOptions.defaults().withKernels(MatMulKernels.ONNX_RUNTIME))) {
            assertThat(linked.kernelsInUse()).isEqualTo(MatMulKernels.SPECULA);
            assertThat(greedy(linked, prompt, 8)).containsExactly(greedy(plain, prompt, 8));
        }
    }

    private static int[] greedy(DecoderModel model, int[] prompt, int tokens) throws Exception {
        int[] ids = new int[tokens];
        try (KvSequence cache = model.newCache()) {
            StepOutput output = model.forward(new StepInput(cache, prompt, 1, false, null));
            for (int i = 0; i < tokens; i++) {
                ids[i] = Distributions.argmax(output.logits(), 0, output.width());
                output = model.forward(new StepInput(cache, new int[] { ids[i] }, 1, false, null));
            }
        }
        return ids;
    }

    /**
     * llama's weights are whole groups of 4 panels (N a multiple of 64); qwen3's k and v
     * projections (N = 32) and llama-draft's (hidden 32) are tail panels.
     */
    @ParameterizedTest
    @ValueSource(strings = { "llama", "qwen3", "llama-draft" })
    void logitsStayWithinFloatRoundingOfOnnxRuntimesMatMul(String fixture) throws Exception {
        int[] prompt = { 1, 17, 230, 5, 99, 311, 7, 3, 64, 500 };
        try (DecoderModel standard = DecoderModel.load(Fixtures.model(fixture),
                RuntimeOptions.defaults().withKernels(MatMulKernels.ONNX_RUNTIME));
                DecoderModel specula = DecoderModel.load(Fixtures.model(fixture), SPECULA);
                KvSequence a = standard.newCache();
                KvSequence b = specula.newCache()) {
            assertThat(standard.kernelsInUse()).isEqualTo(MatMulKernels.ONNX_RUNTIME);
            float[] expected = standard.forward(new StepInput(a, prompt, prompt.length, false, null)).logits();
            float[] actual = specula.forward(new StepInput(b, prompt, prompt.length, false, null)).logits();
            assertThat(actual).hasSameSizeAs(expected);
            double largest = largestDifference(expected, actual);
            double scale = largestMagnitude(expected);
            System.out.printf("%s fixture, 10 rows: largest logit difference %.3g (largest logit %.3g)%n", fixture,
                    largest, scale);
            assertThat(largest).isLessThan(1e-4 * Math.max(1, scale));
        }
    }

    @Test
    void autoLeavesQuantizedGraphsWithFloatActivationsOnOnnxRuntimesKernels() {
        // int4-b32: MatMulNBits computing in float32 on the dequantized weights
        for (String fixture : new String[] { "llama-int4" }) {
            try (DecoderModel model = DecoderModel.load(Fixtures.model(fixture),
                    RuntimeOptions.defaults().withKernels(MatMulKernels.AUTO))) {
                assertThat(model.kernelsInUse()).as(fixture).isEqualTo(MatMulKernels.ONNX_RUNTIME);
                assertThat(model.speculaMatMuls()).isZero();
            }
        }
    }

    /**
     * 4- and 8-bit weights computed with int8 activations ({@code quantize}'s {@code -a8}
     * schemes) run on {@code PanelMatMulQ4} and {@code PanelMatMulQ8}: every row on its
     * own, so the call sizes ONNX Runtime's kernel needs (two tokens at least, an even
     * number) go; the logits stay within the int8 rounding of ONNX Runtime's.
     */
    @Test
    void quantizedGraphsWithInt8ActivationsRunOnSpeculasKernelNearOnnxRuntimes() throws Exception {
        int[] prompt = { 1, 17, 230, 5, 99, 311, 7, 3, 64, 500 };
        for (String fixture : new String[] { "llama-int4-a8", "llama-int4-b128-a8", "llama-int8-b128-a8" }) {
            String bits = fixture.startsWith("llama-int8") ? "8-bit" : "4-bit";
            for (String graph : new String[] { "model.onnx", "model_packed.onnx" }) {
                Path path = Fixtures.model(fixture).resolve(graph);
                try (DecoderModel standard = DecoderModel.load(path,
                        RuntimeOptions.defaults().withKernels(MatMulKernels.ONNX_RUNTIME));
                        DecoderModel specula = DecoderModel.load(path, SPECULA);
                        KvSequence a = standard.newCache();
                        KvSequence b = specula.newCache()) {
                    assertThat(specula.kernelsInUse()).isEqualTo(MatMulKernels.SPECULA);
                    assertThat(specula.quantizedSpeculaMatMuls()).as(fixture).isEqualTo(15);
                    assertThat(specula.speculaMatMuls()).isEqualTo(15);
                    assertThat(specula.kernelsSummary()).isEqualTo("15 " + bits + " MatMuls on Specula's kernels");
                    assertThat(specula.callTokens()).isEqualTo(new CallTokens(2, 1));
                    assertThat(standard.callTokens().min()).isEqualTo(2);
                    float[] expected = standard.forward(new StepInput(a, prompt, prompt.length, false, null)).logits();
                    float[] actual = specula.forward(new StepInput(b, prompt, prompt.length, false, null)).logits();
                    double largest = largestDifference(expected, actual);
                    double scale = largestMagnitude(expected);
                    System.out.printf("%s/%s, 10 rows: largest logit difference %.3g (largest logit %.3g)%n", fixture,
                            graph, largest, scale);
                    assertThat(largest).as(fixture + "/" + graph).isLessThan(0.05 * Math.max(1, scale));
                }
            }
        }
    }

    /**
     * Symmetric 8-bit blocks ({@code int8-b32-sym-a8}, llama.cpp's Q8_0 layout) carry no
     * zero points: 128 each, as ONNX Runtime's {@code MatMulNBits} reads them. ONNX
     * Runtime's kernel rounds the activations of such a graph as {@code PanelMatMulQ8}
     * does, so the logits agree within float rounding (its asymmetric 8-bit path rounds
     * them its own way: the test above allows the int8 rounding).
     */
    @Test
    void symmetricEightBitGraphsGiveOnnxRuntimesLogits() throws Exception {
        int[] prompt = { 1, 17, 230, 5, 99, 311, 7, 3, 64, 500 };
        for (String graph : new String[] { "model.onnx", "model_packed.onnx" }) {
            Path path = Fixtures.model("llama-int8-sym-a8").resolve(graph);
            try (DecoderModel standard = DecoderModel.load(path,
                    RuntimeOptions.defaults().withKernels(MatMulKernels.ONNX_RUNTIME));
                    DecoderModel specula = DecoderModel.load(path, SPECULA);
                    KvSequence a = standard.newCache();
                    KvSequence b = specula.newCache()) {
                assertThat(specula.kernelsSummary()).isEqualTo("15 8-bit MatMuls on Specula's kernels");
                float[] expected = standard.forward(new StepInput(a, prompt, prompt.length, false, null)).logits();
                float[] actual = specula.forward(new StepInput(b, prompt, prompt.length, false, null)).logits();
                double largest = largestDifference(expected, actual);
                double scale = largestMagnitude(expected);
                System.out.printf("llama-int8-sym-a8/%s, 10 rows: largest logit difference %.3g (largest logit %.3g)%n",
                        graph, largest, scale);
                assertThat(largest).as(graph).isLessThan(1e-4 * Math.max(1, scale));
            }
        }
    }

    /**
     * A row of a 4- or 8-bit call is the same bits in every call of two tokens or more,
     * odd ones included (ONNX Runtime's kernel computes rows two at a time: its graphs
     * ask for an even number); a call of one token takes ONNX Runtime's one-row float
     * paths elsewhere in the graph (the attention's), which the int8 rounding can
     * magnify, so the graphs' two-token minimum stays.
     */
    @Test
    void aQuantizedRowIsTheSameBitsInCallsOfTwoTokensOrMore() throws Exception {
        int[] prompt = { 1, 17, 230, 5, 99, 311, 7, 3, 64, 500, 41, 8, 77 };
        for (String fixture : new String[] { "llama-int4-b128-a8", "llama-int4-a8", "llama-int8-b128-a8" }) {
            for (String graph : new String[] { "model.onnx", "model_packed.onnx" }) {
                try (DecoderModel model = DecoderModel.load(Fixtures.model(fixture).resolve(graph), SPECULA)) {
                    assertThat(model.callTokens()).isEqualTo(new CallTokens(2, 1));
                    float[] whole;
                    try (KvSequence cache = model.newCache()) {
                        whole = model.forward(new StepInput(cache, prompt, prompt.length, false, null)).logits();
                    }
                    for (int[] sizes : new int[][] { { 2, 2, 2, 2, 2, 3 }, { 3, 3, 3, 4 }, { 5, 2, 6 }, { 7, 6 } }) {
                        assertCallsGiveTheRows(model, prompt, sizes, whole, fixture + "/" + graph);
                    }
                }
            }
        }
    }

    /**
     * A fused packed graph's GroupQueryAttention runs on {@code SpeculaAttention}: logits
     * within float rounding of ONNX Runtime's, and a row the same bits in a call of one
     * token as in any other call (ONNX Runtime's attention takes another path for one
     * row).
     */
    @Test
    void aFusedGraphsAttentionRunsOnSpeculasKernelRowByRow() throws Exception {
        int[] prompt = { 1, 17, 230, 5, 99, 311, 7, 3, 64, 500, 41, 8, 77 };
        Path graph = Fixtures.model("llama-fused-packed").resolve("model.onnx");
        try (DecoderModel standard = DecoderModel.load(graph,
                RuntimeOptions.defaults().withKernels(MatMulKernels.ONNX_RUNTIME));
                DecoderModel specula = DecoderModel.load(graph, SPECULA);
                KvSequence a = standard.newCache();
                KvSequence b = specula.newCache()) {
            assertThat(specula.speculaAttentions()).isEqualTo(2);
            assertThat(specula.kernelsSummary()).endsWith(" MatMuls and 2 attentions on Specula's kernels");
            float[] expected = standard.forward(new StepInput(a, prompt, prompt.length, false, null)).logits();
            float[] whole = specula.forward(new StepInput(b, prompt, prompt.length, false, null)).logits();
            double largest = largestDifference(expected, whole);
            double scale = largestMagnitude(expected);
            System.out.printf("llama-fused-packed, 13 rows: largest logit difference %.3g (largest logit %.3g)%n",
                    largest, scale);
            assertThat(largest).isLessThan(1e-4 * Math.max(1, scale));
            int[] ones = new int[prompt.length];
            Arrays.fill(ones, 1);
            for (int[] sizes : new int[][] { ones, { 4, 1, 1, 7 }, { 6, 7 } }) {
                assertCallsGiveTheRows(specula, prompt, sizes, whole, "llama-fused-packed");
            }
        }
    }

    private static double largestDifference(float[] expected, float[] actual) {
        assertThat(actual).hasSameSizeAs(expected);
        double largest = 0;
        for (int i = 0; i < expected.length; i++) {
            largest = Math.max(largest, Math.abs(actual[i] - expected[i]));
        }
        return largest;
    }

    private static double largestMagnitude(float[] values) {
        double largest = 0;
        for (float value : values) {
            largest = Math.max(largest, Math.abs(value));
        }
        return largest;
    }

    /**
     * A 4-bit fused packed graph whose every MatMulNBits and attention Specula's kernels
     * run computes a row the same in a one-token call too: its two-token minimum goes
     * (ONNX Runtime's kernels keep both of its rules).
     */
    @Test
    void aFourBitGraphOnSpeculasKernelsThroughoutTakesOneTokenCalls() throws Exception {
        int[] prompt = { 1, 17, 230, 5, 99, 311, 7, 3, 64, 500, 41, 8, 77 };
        Path graph = Fixtures.model("llama-fused-packed-int4-b128-a8").resolve("model.onnx");
        try (DecoderModel standard = DecoderModel.load(graph,
                RuntimeOptions.defaults().withKernels(MatMulKernels.ONNX_RUNTIME));
                DecoderModel specula = DecoderModel.load(graph, SPECULA);
                KvSequence cache = specula.newCache()) {
            assertThat(standard.callTokens()).isEqualTo(new CallTokens(2, 2));
            assertThat(specula.callTokens()).isEqualTo(CallTokens.ANY);
            assertThat(specula.holesAreExact()).as("int8 activations: compact caches").isFalse();
            assertThat(specula.kernelsSummary()).isEqualTo("11 4-bit MatMuls and 2 attentions on Specula's kernels");
            float[] whole = specula.forward(new StepInput(cache, prompt, prompt.length, false, null)).logits();
            int[] ones = new int[prompt.length];
            Arrays.fill(ones, 1);
            for (int[] sizes : new int[][] { ones, { 1, 2, 3, 1, 5, 1 }, { 6, 7 } }) {
                assertCallsGiveTheRows(specula, prompt, sizes, whole, "llama-fused-packed-int4-b128-a8");
            }
        }
    }

    /** The prompt in calls of these sizes gives each row as {@code whole} holds it. */
    private static void assertCallsGiveTheRows(DecoderModel model, int[] prompt, int[] sizes, float[] whole,
            String label) throws Exception {
        int width = whole.length / prompt.length;
        try (KvSequence cache = model.newCache()) {
            int start = 0;
            for (int size : sizes) {
                int[] call = Arrays.copyOfRange(prompt, start, start + size);
                StepOutput output = model.forward(new StepInput(cache, call, size, false, null));
                for (int row = 0; row < size; row++) {
                    assertThat(Arrays.copyOfRange(output.logits(), row * width, (row + 1) * width))
                        .as("%s, calls of %s, token %d", label, Arrays.toString(sizes), start + row)
                        .containsExactly(Arrays.copyOfRange(whole, (start + row) * width, (start + row + 1) * width));
                }
                start += size;
            }
        }
    }

    @Test
    void aFloat16GraphKeepsOnnxRuntimesKernelsEvenWhenSpeculasAreAskedFor() {
        // nothing of it is float32 MatMul: loading says so in the log and goes on
        try (DecoderModel model = DecoderModel.load(Fixtures.model("llama-fp16"), SPECULA)) {
            assertThat(model.kernelsInUse()).isEqualTo(MatMulKernels.ONNX_RUNTIME);
        }
    }

    @Test
    void speculaKernelsOnAnotherProviderAreRefusedByName() {
        RuntimeOptions cuda = SPECULA.withProvider(ExecutionProvider.CUDA, 0);
        assertThatThrownBy(() -> DecoderModel.load(Fixtures.model("llama"), cuda).close())
            .isInstanceOf(ModelLoadException.class)
            .hasMessageContaining("specula.runtime.kernels")
            .hasMessageContaining("CPU provider");
    }

    @Test
    void anUnknownKernelsValueNamesTheSettingAndItsValues() {
        assertThatThrownBy(() -> MatMulKernels.parse("fast", "specula.runtime.kernels"))
            .isInstanceOf(IllegalArgumentException.class)
            .hasMessage("specula.runtime.kernels must be onnx-runtime, auto or specula but was 'fast'");
        assertThat(MatMulKernels.parse("onnxruntime", "x")).isEqualTo(MatMulKernels.ONNX_RUNTIME);
        assertThat(MatMulKernels.parse(" Specula ", "x")).isEqualTo(MatMulKernels.SPECULA);
    }

}
