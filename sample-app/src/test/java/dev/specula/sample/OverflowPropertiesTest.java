package dev.specula.sample;

import java.time.Duration;

import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThatCode;
import static org.assertj.core.api.Assertions.assertThatIllegalStateException;

/** Bad overflow settings fail at startup with the property's name. */
class OverflowPropertiesTest {

    @Test
    void offIsNeverChecked() {
        assertThatCode(new OverflowProperties()::check).doesNotThrowAnyException();
    }

    @Test
    void enabledNeedsAnHttpBaseUrlAndAModel() {
        OverflowProperties properties = new OverflowProperties();
        properties.setEnabled(true);
        assertThatIllegalStateException().isThrownBy(properties::check)
            .withMessageContaining("specula.overflow.base-url");
        properties.setBaseUrl("ftp://host/v1");
        assertThatIllegalStateException().isThrownBy(properties::check)
            .withMessageContaining("specula.overflow.base-url");
        properties.setBaseUrl("http://vllm:8000/v1");
        assertThatIllegalStateException().isThrownBy(properties::check).withMessageContaining("specula.overflow.model");
        properties.setModel("remote");
        assertThatCode(properties::check).doesNotThrowAnyException();
    }

    @Test
    void theBreakerSettingsAreChecked() {
        OverflowProperties properties = new OverflowProperties();
        properties.setEnabled(true);
        properties.setBaseUrl("http://vllm:8000/v1");
        properties.setModel("remote");
        properties.getCircuitBreaker().setFailureRateThreshold(0);
        assertThatIllegalStateException().isThrownBy(properties::check)
            .withMessageContaining("specula.overflow.circuit-breaker.failure-rate-threshold");
        properties.getCircuitBreaker().setFailureRateThreshold(50);
        properties.getCircuitBreaker().setWaitDurationInOpenState(Duration.ZERO);
        assertThatIllegalStateException().isThrownBy(properties::check)
            .withMessageContaining("specula.overflow.circuit-breaker.wait-duration-in-open-state");
    }

}
