package dev.specula.autoconfigure.actuate;

import io.github.resilience4j.circuitbreaker.CircuitBreaker;
import org.springframework.boot.health.contributor.Health;
import org.springframework.boot.health.contributor.HealthIndicator;

import dev.specula.engine.ModelPair;
import dev.specula.serving.GenerationService;
import dev.specula.serving.ModelPairHandle;

/**
 * Health of Specula's models ({@code /actuator/health/specula}):
 *
 * <pre>
 * LOADING  OUT_OF_SERVICE  models: loading       (specula.load-mode=background, until loaded)
 * FAILED   DOWN            models: failed, error (the load failure)
 * READY    UP              models: ready, model, target, draft, griffin, speculation, draftBreaker, goodput
 * READY    DOWN            models: ready, engine: dead, error (an Error killed the engine thread: every request fails)
 * </pre>
 *
 * An open draft circuit breaker (or goodput switch) leaves the status UP: requests are
 * still answered, by plain target decoding, with the same output; the {@code speculation}
 * detail says why it is off.
 */
public class SpeculaHealthIndicator implements HealthIndicator {

    private final GenerationService service;

    private final String modelName;

    /**
     * A health indicator over the service.
     * @param service the service whose models and breakers are reported
     * @param modelName the served model's name, or null
     */
    public SpeculaHealthIndicator(GenerationService service, String modelName) {
        if (service == null) {
            throw new IllegalArgumentException("service must not be null");
        }
        this.service = service;
        this.modelName = modelName;
    }

    @Override
    public Health health() {
        ModelPairHandle models = service.models();
        return switch (models.state()) {
            case LOADING -> Health.outOfService().withDetail("models", "loading").build();
            case FAILED -> Health.down(models.failure().orElse(null)).withDetail("models", "failed").build();
            case READY -> ready(models.get());
        };
    }

    private Health ready(ModelPair pair) {
        if (!service.isEngineAlive()) {
            return Health.down(service.engineFailure().orElse(null))
                .withDetail("models", "ready")
                .withDetail("engine", "dead")
                .build();
        }
        CircuitBreaker.State draftBreaker = service.draftBreaker().getState();
        String goodput = service.goodputBreaker().map((breaker) -> breaker.getState().name()).orElse("DISABLED");
        Health.Builder health = Health.up().withDetail("models", "ready");
        if (modelName != null) {
            health.withDetail("model", modelName);
        }
        return health.withDetail("target", pair.target().files().directory().toString())
            .withDetail("draft", pair.draft().map((draft) -> draft.files().directory().toString()).orElse("none"))
            .withDetail("griffin", pair.head().map((head) -> head.files().directory().toString()).orElse("none"))
            .withDetail("speculation", speculation(pair, draftBreaker, goodput))
            .withDetail("draftBreaker", draftBreaker.name())
            .withDetail("goodput", goodput)
            .build();
    }

    private static String speculation(ModelPair pair, CircuitBreaker.State draftBreaker, String goodput) {
        if (pair.draft().isEmpty() && pair.head().isEmpty()) {
            return "off: no draft model, plain decoding serves";
        }
        if (draftBreaker == CircuitBreaker.State.OPEN || draftBreaker == CircuitBreaker.State.FORCED_OPEN) {
            return "off: the draft circuit breaker is open after draft failures or time-outs, plain decoding serves";
        }
        if ("OPEN".equals(goodput) || "FORCED_OPEN".equals(goodput)) {
            return "off: speculation decoded slower than plain decoding, plain decoding serves until probed again";
        }
        if (draftBreaker == CircuitBreaker.State.HALF_OPEN || "HALF_OPEN".equals(goodput)) {
            return "probing";
        }
        return "on";
    }

}
