package dev.specula.model;

import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashSet;
import java.util.Set;
import java.util.SortedSet;
import java.util.TreeSet;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

/**
 * What the engine needs from {@code config.json} and {@code generation_config.json}.
 *
 * @param modelType Hugging Face {@code model_type} ("llama", "qwen2", "gpt2", ...)
 * @param vocabSize rows of the embedding / columns of the logits
 * @param contextLength {@code max_position_embeddings} (Llama, Qwen2) or
 * {@code n_positions} (GPT-2)
 * @param eosTokenIds end-of-sequence ids, from generation_config.json, else config.json;
 * may be empty
 * @param bosTokenId beginning-of-sequence id, -1 when the model has none
 */
public record ModelConfig(String modelType, int vocabSize, int contextLength, Set<Integer> eosTokenIds,
        int bosTokenId) {

    private static final ObjectMapper JSON = new ObjectMapper();

    /**
     * {@code model_type} values whose exports (by {@code specula_tools export}) are
     * decoded losslessly in tests: the families {@code export} supports.
     */
    static final SortedSet<String> SUPPORTED_MODEL_TYPES = new TreeSet<>(
            Set.of("llama", "qwen2", "gpt2", "qwen3", "mistral", "phi3", "gemma2", "gemma3_text"));

    /**
     * The {@code model_type} of a GRIFFIN feature head
     * ({@code specula_tools train-griffin}): a draft that reads the target's hidden
     * states, loaded as a head only.
     */
    public static final String FEATURE_HEAD_TYPE = "griffin_head";

    /**
     * Reads config.json and generation_config.json; a missing vocab size or context
     * length, or a {@code model_type} the engine does not know, fails naming the file.
     */
    static ModelConfig read(ModelFiles files) {
        JsonNode config = readJson(files.config());
        JsonNode generation = files.generationConfig().map(ModelConfig::readJson).orElse(JSON.createObjectNode());
        String modelType = config.path("model_type").asText("unknown");
        if (!SUPPORTED_MODEL_TYPES.contains(modelType) && !FEATURE_HEAD_TYPE.equals(modelType)) {
            throw new ModelLoadException(files.config(),
                    files.config() + " has model_type \"" + modelType
                            + "\", a family the engine does not support; supported model_type values: "
                            + String.join(", ", SUPPORTED_MODEL_TYPES) + " (docs/models.md)");
        }
        int vocabSize = config.path("vocab_size").asInt(-1);
        if (vocabSize <= 0) {
            throw new ModelLoadException(files.config(), files.config() + " has no positive vocab_size");
        }
        int contextLength = firstPositive(config, "max_position_embeddings", "n_positions", "n_ctx",
                "max_sequence_length");
        if (contextLength <= 0) {
            throw new ModelLoadException(files.config(),
                    files.config() + " names no context length (max_position_embeddings or n_positions)");
        }
        Set<Integer> eos = ids(generation.path("eos_token_id"));
        if (eos.isEmpty()) {
            eos = ids(config.path("eos_token_id"));
        }
        Set<Integer> bos = ids(
                generation.has("bos_token_id") ? generation.path("bos_token_id") : config.path("bos_token_id"));
        return new ModelConfig(modelType, vocabSize, contextLength, Set.copyOf(eos),
                bos.isEmpty() ? -1 : bos.iterator().next());
    }

    static JsonNode readJson(Path file) {
        try {
            return JSON.readTree(file.toFile());
        }
        catch (IOException ex) {
            throw new ModelLoadException(file, "Cannot parse " + file + " as JSON: " + ex.getMessage(), ex);
        }
    }

    private static int firstPositive(JsonNode node, String... names) {
        for (String name : names) {
            int value = node.path(name).asInt(-1);
            if (value > 0) {
                return value;
            }
        }
        return -1;
    }

    private static Set<Integer> ids(JsonNode node) {
        Set<Integer> ids = new LinkedHashSet<>();
        if (node.isArray()) {
            node.forEach((element) -> ids.add(element.asInt()));
        }
        else if (node.isIntegralNumber()) {
            ids.add(node.asInt());
        }
        return ids;
    }
}
