package dev.specula.model;

import java.util.ArrayList;
import java.util.List;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtException;
import org.junit.jupiter.api.Test;

import dev.specula.Fixtures;
import dev.specula.kv.KvSequence;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * A model's calls share its {@code logits_to_keep} tensors instead of making one per
 * call; a count beyond the shared ones is made for the call and closed by it, and the
 * model's close releases the shared ones.
 */
class ConstantInputsTest {

    @Test
    void callsShareOneTensorPerKeepCountAndTheModelClosesThem() throws OrtException {
        DecoderModel model = Fixtures.load("qwen-vocab");
        List<OnnxTensor> created = new ArrayList<>();
        try (KvSequence first = model.newCache(); KvSequence second = model.newCache()) {
            assertThat(model.signature().hasLogitsToKeep()).isTrue();
            OnnxTensor three = model.constants.logitsToKeep(3, created);
            assertThat(model.constants.logitsToKeep(3, created)).isSameAs(three);
            assertThat(created).isEmpty();
            assertThat(three.getLongBuffer().get(0)).isEqualTo(3);
            long beyond = ConstantInputs.CACHED_KEEP_COUNTS + 1;
            OnnxTensor made = model.constants.logitsToKeep(beyond, created);
            assertThat(created).containsExactly(made);
            assertThat(made.getLongBuffer().get(0)).isEqualTo(beyond);
            // two sequences' steps through the shared tensor: each its own logits
            int[] prompt = { 5, 17, 42, 9, 23, 11 };
            StepOutput once = model.forward(new StepInput(first, prompt, 3, false, null));
            StepOutput again = model.forward(new StepInput(second, prompt, 3, false, null));
            assertThat(once.rows()).isEqualTo(3);
            assertThat(again.logits()).containsExactly(once.logits());
        }
        finally {
            created.forEach(OnnxTensor::close);
            model.close();
        }
        assertThatThrownBy(() -> model.constants.logitsToKeep(3, new ArrayList<>()))
            .isInstanceOf(IllegalStateException.class)
            .hasMessageContaining("closed");
    }

}
