package dev.specula.model;

import org.junit.jupiter.api.Test;

import dev.specula.Fixtures;
import dev.specula.engine.Engine;
import dev.specula.engine.GenerationRequest;
import dev.specula.engine.ModelPair;
import dev.specula.policy.PlainPolicy;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Sessions share the process's global intra-op pool when their threads and spinning are
 * the pool's ({@link OrtEnvironments#get(OrtEnvironments.ThreadPool)}: the first model
 * loaded sets it); others start a pool of their own. Either way a model decodes the same
 * tokens.
 */
class ThreadPoolTest {

    @Test
    void sessionsOfThePoolsOptionsShareItAndOthersGetTheirOwn() {
        RuntimeOptions defaults = RuntimeOptions.defaults();
        try (DecoderModel first = DecoderModel.load(Fixtures.model("llama"), defaults)) {
            OrtEnvironments.ThreadPool global = OrtEnvironments.globalPool();
            OrtEnvironments.ThreadPool mine = new OrtEnvironments.ThreadPool(defaults.intraOpThreads(),
                    defaults.spinning());
            assertThat(first.sharesThreadPool()).isEqualTo(mine.equals(global));
            // options no pool of this process has: a pool of its own
            RuntimeOptions other = defaults.withIntraOpThreads(global != null && global.threads() == 3 ? 4 : 3)
                .withSpinning(true);
            try (DecoderModel second = DecoderModel.load(Fixtures.model("llama"), other)) {
                assertThat(second.sharesThreadPool()).isFalse();
                int[] prompt = { 5, 17, 42, 99 };
                assertThat(decode(second, prompt)).containsExactly(decode(first, prompt));
            }
        }
    }

    private static int[] decode(DecoderModel model, int[] prompt) {
        try (Engine engine = new Engine(new ModelPair(model, null), Engine.Settings.defaults())) {
            return engine.generate(
                    GenerationRequest.builder(prompt).maxNewTokens(12).ignoreEos(true).policy(PlainPolicy::new).build())
                .tokenIds();
        }
    }

}
