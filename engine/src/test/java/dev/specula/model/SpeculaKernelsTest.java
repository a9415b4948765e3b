package dev.specula.model;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.stream.Stream;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

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

    @Test
    void logitsStayWithinFloatRoundingOfOnnxRuntimesMatMul() throws Exception {
        int[] prompt = { 1, 17, 230, 5, 99, 311, 7, 3, 64, 500 };
        try (DecoderModel standard = DecoderModel.load(Fixtures.model("llama"),
                RuntimeOptions.defaults().withKernels(MatMulKernels.ONNX_RUNTIME));
                DecoderModel specula = DecoderModel.load(Fixtures.model("llama"), SPECULA);
                KvSequence a = standard.newCache();
                KvSequence b = specula.newCache()) {
            assertThat(standard.kernelsInUse()).isEqualTo(MatMulKernels.ONNX_RUNTIME);
            float[] expected = standard.forward(new StepInput(a, prompt, prompt.length, false, null)).logits();
            float[] actual = specula.forward(new StepInput(b, prompt, prompt.length, false, null)).logits();
            assertThat(actual).hasSameSizeAs(expected);
            double largest = 0;
            double scale = 0;
            for (int i = 0; i < expected.length; i++) {
                largest = Math.max(largest, Math.abs(actual[i] - expected[i]));
                scale = Math.max(scale, Math.abs(expected[i]));
            }
            System.out.printf("llama fixture, 10 rows: largest logit difference %.3g (largest logit %.3g)%n", largest,
                    scale);
            assertThat(largest).isLessThan(1e-4 * Math.max(1, scale));
        }
    }

    @Test
    void autoLeavesQuantizedGraphsOnOnnxRuntimesKernels() {
        try (DecoderModel model = DecoderModel.load(Fixtures.model("llama-int4"),
                RuntimeOptions.defaults().withKernels(MatMulKernels.AUTO))) {
            assertThat(model.kernelsInUse()).isEqualTo(MatMulKernels.ONNX_RUNTIME);
            assertThat(model.speculaMatMuls()).isZero();
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
