package dev.specula.model;

import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class CallTokensTest {

    @Test
    void floatActivationsAllowAnyCall() {
        assertThat(CallTokens.ANY.any()).isTrue();
        assertThat(CallTokens.ANY.smallest()).isEqualTo(1);
        assertThat(CallTokens.ANY.atLeast(3)).isEqualTo(3);
        assertThat(CallTokens.ANY.roundDown(5)).isEqualTo(5);
        assertThat(CallTokens.ANY.allows(1)).isTrue();
    }

    @Test
    void twoTokensACallAtLeast() {
        CallTokens call = new CallTokens(2, 1);
        assertThat(call.any()).isFalse();
        assertThat(call.smallest()).isEqualTo(2);
        assertThat(call.atLeast(1)).isEqualTo(2);
        assertThat(call.atLeast(3)).isEqualTo(3);
        assertThat(call.roundDown(3)).isEqualTo(3);
        assertThat(call.allows(1)).isFalse();
        assertThat(call.allows(3)).isTrue();
    }

    @Test
    void rowsTwoAtATimeTakeEvenCalls() {
        CallTokens call = new CallTokens(2, 2);
        assertThat(call.smallest()).isEqualTo(2);
        assertThat(call.atLeast(1)).isEqualTo(2);
        assertThat(call.atLeast(3)).isEqualTo(4);
        assertThat(call.atLeast(6)).isEqualTo(6);
        assertThat(call.roundDown(5)).isEqualTo(4);
        assertThat(call.roundDown(1)).isZero();
        assertThat(call.allows(3)).isFalse();
        assertThat(call.allows(4)).isTrue();
        // an odd minimum is rounded up to the multiple
        assertThat(new CallTokens(3, 2).smallest()).isEqualTo(4);
    }

    @Test
    void outOfRangeRulesAreRefused() {
        assertThatThrownBy(() -> new CallTokens(0, 1)).hasMessageContaining("min");
        assertThatThrownBy(() -> new CallTokens(17, 1)).hasMessageContaining("min");
        assertThatThrownBy(() -> new CallTokens(2, 3)).hasMessageContaining("multiple must be 1 or 2");
    }

}
