package dev.specula.policy;

import java.util.Map;

import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class SpeculationPoliciesTest {

    private static final RoundContext CONTEXT = new RoundContext(0, 100, 1, null);

    @Test
    void fixedWithGammaInTheName() {
        SpeculationPolicy policy = SpeculationPolicies.factory("fixed:3", PolicyParameters.ofGamma(7)).get();
        assertThat(policy.name()).isEqualTo("fixed");
        assertThat(policy.draftLength(CONTEXT)).isEqualTo(3);
    }

    @Test
    void fixedTakesTheDefaultGamma() {
        assertThat(SpeculationPolicies.factory("fixed", PolicyParameters.ofGamma(5)).get().draftLength(CONTEXT))
            .isEqualTo(5);
    }

    @Test
    void plainNeverDrafts() {
        assertThat(SpeculationPolicies.factory("plain", PolicyParameters.ofGamma(4)).get().draftLength(CONTEXT))
            .isZero();
    }

    @Test
    void eachSequenceGetsItsOwnInstance() {
        var factory = SpeculationPolicies.factory("fixed:2", PolicyParameters.ofGamma(4));
        assertThat(factory.get()).isNotSameAs(factory.get());
    }

    @Test
    void badNamesAndValuesNameTheFix() {
        assertThatThrownBy(() -> SpeculationPolicies.factory("fastest", PolicyParameters.ofGamma(4)))
            .isInstanceOf(UnknownPolicyException.class)
            .hasMessageContaining("'fastest'")
            .hasMessageContaining("plain, fixed");
        assertThatThrownBy(() -> SpeculationPolicies.factory("fixed:0", PolicyParameters.ofGamma(4)))
            .hasMessageContaining("gamma of policy 'fixed' must be in [1, 64] but was 0");
        assertThatThrownBy(() -> SpeculationPolicies.factory("fixed:x", PolicyParameters.ofGamma(4)))
            .hasMessageContaining("must be the draft length γ, an integer, after the ':' of 'fixed:x' but was x");
    }

    @Test
    void numericOptionsAreRangeChecked() {
        PolicyParameters parameters = new PolicyParameters(4, Map.of("threshold", "1.5"));
        assertThatThrownBy(() -> parameters.option("confidence", "threshold", 0.4, 0, 1))
            .hasMessageContaining("Option 'threshold' of policy 'confidence' must be in [0.0, 1.0] but was 1.5");
        assertThat(new PolicyParameters(4, Map.of()).option("confidence", "threshold", 0.4, 0, 1)).isEqualTo(0.4);
    }

}
