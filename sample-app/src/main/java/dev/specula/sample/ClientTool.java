package dev.specula.sample;

import org.springframework.ai.tool.ToolCallback;
import org.springframework.ai.tool.definition.ToolDefinition;

/**
 * A tool the API client declared in {@code tools}: offered to the model by its
 * definition; the client runs the calls the answer carries, so the gateway never does.
 */
final class ClientTool implements ToolCallback {

    private final ToolDefinition definition;

    ClientTool(String name, String description, String parametersSchema) {
        this.definition = ToolDefinition.builder()
            .name(name)
            .description(description)
            .inputSchema(parametersSchema)
            .build();
    }

    @Override
    public ToolDefinition getToolDefinition() {
        return definition;
    }

    @Override
    public String call(String toolInput) {
        throw new IllegalStateException("The tool " + definition.name()
                + " is run by the API client: the gateway returns its calls in the answer");
    }

}
