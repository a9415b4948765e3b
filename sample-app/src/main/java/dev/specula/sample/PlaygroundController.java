package dev.specula.sample;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;

import org.springframework.ai.chat.model.ChatModel;
import org.springframework.beans.factory.ObjectProvider;
import org.springframework.web.bind.annotation.GetMapping;
import org.springframework.web.bind.annotation.RestController;

import dev.specula.engine.ModelPair;
import dev.specula.policy.SpeculationPolicies;
import dev.specula.proposer.ProposerKind;
import dev.specula.serving.ModelPairHandle;

/**
 * What the playground page ({@code static/index.html} at {@code /}) offers in its
 * selectors: {@code GET /playground/options} answers the served model, every policy name,
 * and the proposers the loaded models can serve (while they load: those that need no
 * head). The page itself is static: it streams {@code POST /v1/chat/completions} with
 * {@code "speculation": {"provenance": true}}.
 */
@RestController
class PlaygroundController {

    private final String model;

    private final ObjectProvider<ModelPairHandle> models;

    PlaygroundController(ChatModel chatModel, ObjectProvider<ModelPairHandle> models) {
        this.model = ChatCompletionsController.servedModelName(chatModel);
        this.models = models;
    }

    @GetMapping("/playground/options")
    Map<String, Object> options() {
        return Map.of("model", model, "policies", new TreeSet<>(SpeculationPolicies.names()), "proposers", proposers());
    }

    /**
     * The proposers a request may name: the prediction's needs a prediction, which the
     * page does not send; the draft model's need a draft, griffin a head.
     */
    private List<String> proposers() {
        ModelPairHandle handle = models.getIfAvailable();
        ModelPair pair = handle != null && handle.state() == ModelPairHandle.State.READY ? handle.get() : null;
        List<String> proposers = new ArrayList<>();
        for (ProposerKind kind : ProposerKind.values()) {
            boolean servable = kind != ProposerKind.PREDICTION && (pair == null ? !kind.usesHead()
                    : (!kind.usesModel() || pair.draft().isPresent()) && (!kind.usesHead() || pair.head().isPresent()));
            if (servable) {
                proposers.add(kind.id());
            }
        }
        return proposers;
    }

}
