package dev.specula.sample;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Predicate;

import tools.jackson.databind.JsonNode;

import dev.specula.chat.SpeculaChatOptions;
import dev.specula.policy.InvalidPolicyOptionException;
import dev.specula.policy.PolicySpec;
import dev.specula.policy.SpeculationPolicies;
import dev.specula.policy.UnknownPolicyException;
import dev.specula.proposer.ProposerKind;
import dev.specula.request.InvalidRequestException;

/**
 * The request fields that the chat and the legacy completions API share, read from
 * OpenAI's JSON and checked one by one, every mistake an {@link InvalidRequestException}
 * that names its field: which top-level fields are known, {@code model}, {@code n}, the
 * sampling fields, {@code stop}, {@code logit_bias}, {@code speculation},
 * {@code prediction}, and typed readers where absent and JSON null both mean "not set".
 */
final class RequestFields {

    /** The fields of {@code speculation}; any other is refused by name. */
    static final Set<String> SPECULATION_FIELDS = Set.of("policy", "gamma", "enabled", "proposer", "provenance");

    private RequestFields() {
    }

    /**
     * Refuses, by name, every top-level field that is neither {@code supported} nor
     * {@code ignored} nor accepted by {@code alsoAccepted}; {@code refused} gives the
     * reason for known fields refused on purpose.
     */
    static void checkFields(JsonNode body, Set<String> supported, Set<String> ignored, Map<String, String> refused,
            Predicate<String> alsoAccepted) {
        for (String field : body.propertyNames()) {
            if (supported.contains(field) || ignored.contains(field) || alsoAccepted.test(field)) {
                continue;
            }
            String reason = refused.get(field);
            throw new InvalidRequestException(field, "unsupported_parameter",
                    reason != null ? field + " is not supported: " + reason : "Unrecognized request field '" + field
                            + "': this gateway reads only the fields sample-app/README.md lists (a misspelt field would otherwise be ignored)");
        }
    }

    /** {@code model}, if given: it must be the served model's name. */
    static String model(JsonNode body, String servedModel) {
        String model = optionalString(body, "model");
        if (model != null && !model.equals(servedModel)) {
            throw new InvalidRequestException("model", "model_not_found", "The model '" + model
                    + "' does not exist: this server serves '" + servedModel + "' (see GET /v1/models)");
        }
        return model;
    }

    /** A field that, like {@code n}, may only be 1: one choice per request. */
    static void requireOne(JsonNode body, String field) {
        Long value = optionalInteger(body, field);
        if (value != null && value != 1) {
            throw new InvalidRequestException(field, field + " must be 1 (one choice per request) but was " + value);
        }
    }

    /**
     * The sampling fields into {@code options}: {@code temperature}, {@code top_p},
     * {@code top_k}, the most tokens ({@code maxTokensField}), {@code stop},
     * {@code seed}, the three penalties and {@code logit_bias}.
     */
    static void sampling(JsonNode body, String maxTokensField, SpeculaChatOptions.Builder options) {
        sampling(body, maxTokensField, 1, options);
    }

    /**
     * {@link #sampling(JsonNode, String, SpeculaChatOptions.Builder)}, the most tokens
     * allowed down to {@code leastMaxTokens} (0: the legacy API's echo, which may ask for
     * the prompt alone).
     */
    static void sampling(JsonNode body, String maxTokensField, int leastMaxTokens, SpeculaChatOptions.Builder options) {
        Double temperature = optionalNumber(body, "temperature");
        if (temperature != null && temperature < 0) {
            throw new InvalidRequestException("temperature",
                    "temperature must be >= 0 (0 = greedy) but was " + temperature);
        }
        Double topP = optionalNumber(body, "top_p");
        if (topP != null && !(topP > 0 && topP <= 1)) {
            throw new InvalidRequestException("top_p", "top_p must be in (0, 1] but was " + topP);
        }
        Long topK = optionalInteger(body, "top_k");
        if (topK != null && (topK < -1 || topK > Integer.MAX_VALUE)) {
            throw new InvalidRequestException("top_k", "top_k must be >= 0 (0 or -1 = off) but was " + topK);
        }
        Long maxTokens = optionalInteger(body, maxTokensField);
        if (maxTokens != null && (maxTokens < leastMaxTokens || maxTokens > Integer.MAX_VALUE)) {
            throw new InvalidRequestException(maxTokensField,
                    maxTokensField + " must be >= " + leastMaxTokens + " but was " + maxTokens);
        }
        Double frequencyPenalty = optionalNumber(body, "frequency_penalty");
        checkRange("frequency_penalty", frequencyPenalty, -2, 2);
        Double presencePenalty = optionalNumber(body, "presence_penalty");
        checkRange("presence_penalty", presencePenalty, -2, 2);
        Double repetitionPenalty = optionalNumber(body, "repetition_penalty");
        if (repetitionPenalty != null && !(repetitionPenalty > 0)) {
            throw new InvalidRequestException("repetition_penalty",
                    "repetition_penalty must be > 0 (1 = off) but was " + repetitionPenalty);
        }
        options.temperature(temperature)
            .topP(topP)
            .topK(topK == null ? null : (int) Math.max(0, topK))
            .maxTokens(maxTokens == null ? null : maxTokens.intValue())
            .stopSequences(stop(body.get("stop")))
            .seed(optionalInteger(body, "seed"))
            .frequencyPenalty(frequencyPenalty)
            .presencePenalty(presencePenalty)
            .repetitionPenalty(repetitionPenalty)
            .logitBias(logitBias(optionalObject(body, "logit_bias")));
    }

    /**
     * Whether a stream ends with a usage chunk: {@code stream_options.include_usage}.
     */
    static boolean includeUsage(JsonNode body) {
        JsonNode streamOptions = optionalObject(body, "stream_options");
        return streamOptions != null
                && Boolean.TRUE.equals(optionalBoolean(streamOptions, "include_usage", "stream_options.include_usage"));
    }

    /**
     * {@code "speculation": {"policy": "fixed", "gamma": 4, "enabled": true, "proposer":
     * "ngram", "provenance": true}}, every field optional, another one refused by name,
     * and OpenAI's Predicted Outputs ({@code prediction}) into {@code options}.
     */
    static void speculation(JsonNode body, SpeculaChatOptions.Builder options) {
        JsonNode node = optionalObject(body, "speculation");
        if (node != null) {
            for (String field : node.propertyNames()) {
                if (!SPECULATION_FIELDS.contains(field)) {
                    throw new InvalidRequestException("speculation." + field, "unsupported_parameter",
                            "Unrecognized field 'speculation." + field
                                    + "': speculation takes policy, gamma, enabled, proposer and provenance");
                }
            }
            String policy = optionalString(node, "policy", "speculation.policy");
            if (policy != null) {
                checkPolicy(policy);
            }
            Long gamma = optionalInteger(node, "gamma", "speculation.gamma");
            if (gamma != null && (gamma < 1 || gamma > Integer.MAX_VALUE)) {
                throw new InvalidRequestException("speculation.gamma",
                        "speculation.gamma (draft length) must be >= 1 but was " + gamma);
            }
            String proposer = optionalString(node, "proposer", "speculation.proposer");
            if (proposer != null) {
                ProposerKind.parse(proposer, "speculation.proposer");
            }
            options.policy(policy)
                .proposer(proposer)
                .gamma(gamma == null ? null : gamma.intValue())
                .speculation(optionalBoolean(node, "enabled", "speculation.enabled"))
                .provenance(optionalBoolean(node, "provenance", "speculation.provenance"));
        }
        options.prediction(prediction(optionalObject(body, "prediction")));
    }

    /**
     * OpenAI's Predicted Outputs: {@code {"type": "content", "content": "..."}}, the
     * content a string or an array of text parts; null when absent.
     */
    private static String prediction(JsonNode node) {
        if (node == null) {
            return null;
        }
        String type = optionalString(node, "type", "prediction.type");
        if (!"content".equals(type)) {
            throw new InvalidRequestException("prediction.type",
                    "prediction.type must be \"content\" but was " + (type == null ? "missing" : "'" + type + "'"));
        }
        JsonNode content = node.get("content");
        if (content != null && content.isString()) {
            return requireText(content.stringValue());
        }
        if (content == null || !content.isArray()) {
            throw new InvalidRequestException("prediction.content",
                    "prediction.content must be a string or an array of text parts");
        }
        StringBuilder text = new StringBuilder();
        for (int i = 0; i < content.size(); i++) {
            JsonNode part = content.get(i);
            String field = "prediction.content[" + i + "]";
            if (!part.isObject() || !"text".equals(optionalString(part, "type", field + ".type"))) {
                throw new InvalidRequestException(field, field + " must be a text part {\"type\": \"text\", ...}");
            }
            String partText = optionalString(part, "text", field + ".text");
            if (partText == null) {
                throw new InvalidRequestException(field + ".text", field + ".text must be a string");
            }
            text.append(partText);
        }
        return requireText(text.toString());
    }

    private static String requireText(String prediction) {
        if (prediction.isEmpty()) {
            throw new InvalidRequestException("prediction.content", "prediction.content must not be empty");
        }
        return prediction;
    }

    /** {@code name} or {@code name:γ}, with a name some policy provider knows. */
    private static void checkPolicy(String policy) {
        try {
            SpeculationPolicies.requireKnown(policy);
        }
        catch (UnknownPolicyException ex) {
            throw new InvalidRequestException("speculation.policy", UnknownPolicyException.CODE, ex.getMessage());
        }
        Integer gamma;
        try {
            gamma = PolicySpec.parse(policy).gamma();
        }
        catch (InvalidPolicyOptionException ex) {
            gamma = -1;
        }
        if (gamma != null && gamma < 1) {
            throw new InvalidRequestException("speculation.policy", "In speculation.policy '" + policy
                    + "' the part after ':' must be the draft length, an integer >= 1");
        }
    }

    private static List<String> stop(JsonNode node) {
        if (node == null || node.isNull()) {
            return null;
        }
        List<String> stops = new ArrayList<>();
        if (node.isString()) {
            stops.add(node.stringValue());
        }
        else if (node.isArray()) {
            for (JsonNode stop : node) {
                if (!stop.isString()) {
                    throw new InvalidRequestException("stop", "stop must be a string or an array of strings");
                }
                stops.add(stop.stringValue());
            }
        }
        else {
            throw new InvalidRequestException("stop", "stop must be a string or an array of strings");
        }
        if (stops.stream().anyMatch(String::isEmpty)) {
            throw new InvalidRequestException("stop", "stop sequences must not be empty strings");
        }
        return stops;
    }

    private static void checkRange(String field, Double value, double min, double max) {
        if (value != null && !(value >= min && value <= max)) {
            throw new InvalidRequestException(field,
                    field + " must be in [" + (int) min + ", " + (int) max + "] but was " + value);
        }
    }

    /**
     * {@code {"<token id>": bias}}: ids as strings (OpenAI's form), biases in [-100,
     * 100]; null when absent.
     */
    private static Map<Integer, Double> logitBias(JsonNode node) {
        if (node == null) {
            return null;
        }
        Map<Integer, Double> bias = new HashMap<>();
        for (String key : node.propertyNames()) {
            int id;
            try {
                id = Integer.parseInt(key);
            }
            catch (NumberFormatException ex) {
                throw new InvalidRequestException("logit_bias",
                        "logit_bias keys must be token ids (integers as strings) but one was '" + key + "'");
            }
            JsonNode value = node.get(key);
            if (!value.isNumber() || !(value.doubleValue() >= -100 && value.doubleValue() <= 100)) {
                throw new InvalidRequestException("logit_bias",
                        "logit_bias values must be numbers in [-100, 100] but token " + key + " had " + value);
            }
            bias.put(id, value.doubleValue());
        }
        return bias;
    }

    // Typed field readers: absent and JSON null both mean "not set"; a value of the wrong
    // type names the field.

    static String optionalString(JsonNode object, String name) {
        return optionalString(object, name, name);
    }

    static String optionalString(JsonNode object, String name, String field) {
        JsonNode node = object.get(name);
        if (node == null || node.isNull()) {
            return null;
        }
        if (!node.isString()) {
            throw new InvalidRequestException(field, field + " must be a string");
        }
        return node.stringValue();
    }

    static Double optionalNumber(JsonNode object, String name) {
        JsonNode node = object.get(name);
        if (node == null || node.isNull()) {
            return null;
        }
        if (!node.isNumber()) {
            throw new InvalidRequestException(name, name + " must be a number");
        }
        return node.doubleValue();
    }

    static Long optionalInteger(JsonNode object, String name) {
        return optionalInteger(object, name, name);
    }

    static Long optionalInteger(JsonNode object, String name, String field) {
        JsonNode node = object.get(name);
        if (node == null || node.isNull()) {
            return null;
        }
        if (!node.isNumber() || !node.canConvertToExactIntegral() || !node.canConvertToLong()) {
            throw new InvalidRequestException(field, field + " must be an integer");
        }
        return node.longValue();
    }

    static Boolean optionalBoolean(JsonNode object, String name, String field) {
        JsonNode node = object.get(name);
        if (node == null || node.isNull()) {
            return null;
        }
        if (!node.isBoolean()) {
            throw new InvalidRequestException(field, field + " must be true or false");
        }
        return node.booleanValue();
    }

    static JsonNode optionalObject(JsonNode object, String name) {
        JsonNode node = object.get(name);
        if (node == null || node.isNull()) {
            return null;
        }
        if (!node.isObject()) {
            throw new InvalidRequestException(name, name + " must be an object");
        }
        return node;
    }

}
