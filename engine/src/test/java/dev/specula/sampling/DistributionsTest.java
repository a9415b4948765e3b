package dev.specula.sampling;

import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

class DistributionsTest {

    private static final float[] LOGITS = { (float) Math.log(0.5), (float) Math.log(0.3), (float) Math.log(0.15),
            (float) Math.log(0.05) };

    @Test
    void argmaxTakesTheFirstOfEqualMaxima() {
        assertThat(Distributions.argmax(new float[] { 1, 3, 3, 2 }, 0, 4)).isEqualTo(1);
        assertThat(Distributions.argmax(new float[] { 9, 1, 3, 3 }, 1, 3)).isEqualTo(1);
    }

    @Test
    void temperatureOneIsTheSoftmax() {
        float[] p = Distributions.sampling(LOGITS, 0, 4, new SamplingParams(1, 0, 1, null));
        assertThat(p).containsExactly(new float[] { 0.5f, 0.3f, 0.15f, 0.05f }, within(1e-6f));
    }

    @Test
    void topKKeepsTheKMostLikelyRenormalized() {
        float[] p = Distributions.sampling(LOGITS, 0, 4, new SamplingParams(1, 2, 1, null));
        assertThat(p).containsExactly(new float[] { 0.625f, 0.375f, 0f, 0f }, within(1e-6f));
    }

    @Test
    void topPKeepsTheSmallestSetReachingP() {
        // 0.5 + 0.3 = 0.8 >= 0.75: the nucleus is the first two tokens
        float[] p = Distributions.sampling(LOGITS, 0, 4, new SamplingParams(1, 0, 0.75, null));
        assertThat(p).containsExactly(new float[] { 0.625f, 0.375f, 0f, 0f }, within(1e-6f));
        float[] all = Distributions.sampling(LOGITS, 0, 4, new SamplingParams(1, 0, 0.99, null));
        assertThat(all[3]).isGreaterThan(0f);
    }

    @Test
    void lowTemperatureSharpens() {
        float[] p = Distributions.sampling(LOGITS, 0, 4, new SamplingParams(0.5, 0, 1, null));
        // p_i ∝ p_i^2: 0.25, 0.09, 0.0225, 0.0025 over 0.365
        assertThat(p[0]).isCloseTo(0.25f / 0.365f, within(1e-5f));
    }

    @Test
    void invalidParametersNameTheFix() {
        assertThatThrownBy(() -> new SamplingParams(-0.1, 0, 1, null)).hasMessageContaining("temperature must be >= 0");
        assertThatThrownBy(() -> new SamplingParams(1, 0, 0, null)).hasMessageContaining("top_p must be in (0, 1]");
        assertThatThrownBy(() -> new SamplingParams(1, -1, 1, null)).hasMessageContaining("top_k must be >= 0");
    }

}
