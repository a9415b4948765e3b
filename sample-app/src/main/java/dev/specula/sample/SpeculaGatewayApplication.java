package dev.specula.sample;

import org.springframework.boot.SpringApplication;
import org.springframework.boot.autoconfigure.SpringBootApplication;
import org.springframework.boot.context.properties.EnableConfigurationProperties;

/**
 * An OpenAI-compatible gateway over Specula's {@code ChatModel}:
 * {@code POST /v1/chat/completions} and {@code POST /v1/completions} (both also
 * streamed), {@code GET /v1/models}, and the actuator with {@code /actuator/prometheus}.
 * With {@code specula-models-tiny} on the classpath it runs with no configuration at all
 * on the embedded draft/target pair.
 */
@SpringBootApplication
@EnableConfigurationProperties(GatewayProperties.class)
public class SpeculaGatewayApplication {

    public static void main(String[] args) {
        SpringApplication.run(SpeculaGatewayApplication.class, args);
    }

}
