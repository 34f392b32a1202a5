using Peft.Checkpoints;
using Peft.Modeling;
using TorchSharp;
using TorchSharp.Modules;

namespace Peft.Training;

/// <summary>The ways to train a model that <see cref="Trainer"/> knows.</summary>
public static class Trainables
{
    /// <summary>The adapter of a PEFT model: checkpoints are adapter directories.</summary>
    public static ITrainable Adapter(PeftModel model) => new AdapterTrainable(model);

    /// <summary>
    /// The model's own parameters selected by <paramref name="trains"/> (by name); all others are
    /// frozen. Every parameter gives full fine-tuning; head parameters alone give a linear probe.
    /// </summary>
    public static ITrainable Parameters(PreTrainedModel model, Func<string, bool> trains) => new ParameterTrainable(model, trains);

    private sealed class AdapterTrainable(PeftModel model) : ITrainable
    {
        public torch.nn.Module<ModelInputs, ModelOutputs> Module => model;

        public IReadOnlyList<Parameter> TrainableParameters { get; } = model.TrainableParameters().Select(p => p.Parameter).ToList();

        public void SaveCheckpoint(string directory) => model.SavePretrained(directory);

        public void AfterOptimizerStep(int globalStep) => model.ActiveAdapter.AfterOptimizerStep(globalStep);

        public void LoadCheckpoint(string directory) => model.LoadAdapterWeights(model.ActiveAdapterName, directory);
    }

    private sealed class ParameterTrainable : ITrainable
    {
        private readonly PreTrainedModel _model;
        private readonly List<(string Name, Parameter Parameter)> _trained;

        public ParameterTrainable(PreTrainedModel model, Func<string, bool> trains)
        {
            _model = model;
            _trained = [];
            foreach (var (name, parameter) in model.named_parameters())
            {
                parameter.requires_grad = trains(name);
                if (parameter.requires_grad) _trained.Add((name, parameter));
            }
            if (_trained.Count == 0) throw new ArgumentException("No parameter of the model was selected for training.");
        }

        public torch.nn.Module<ModelInputs, ModelOutputs> Module => _model;

        public IReadOnlyList<Parameter> TrainableParameters => _trained.Select(p => p.Parameter).ToList();

        public void SaveCheckpoint(string directory)
        {
            Directory.CreateDirectory(directory);
            SafeTensors.Save(Path.Combine(directory, "trained.safetensors"),
                _trained.Select(p => new KeyValuePair<string, torch.Tensor>(p.Name, p.Parameter.detach().cpu())));
        }

        public void LoadCheckpoint(string directory)
        {
            var state = SafeTensors.Load(Path.Combine(directory, "trained.safetensors"));
            try
            {
                using var noGrad = torch.no_grad();
                foreach (var (name, parameter) in _trained)
                {
                    if (!state.TryGetValue(name, out var value)) throw new CheckpointException(directory, name, "the checkpoint lacks this trained parameter.");
                    parameter.copy_(value);
                }
            }
            finally
            {
                // Copied into the parameters: freed now, as PeftModel.LoadAdapterWeights frees its own.
                foreach (var tensor in state.Values) tensor.Dispose();
            }
        }
    }
}
