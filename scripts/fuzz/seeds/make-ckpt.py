# Writes the .ckpt seeds of the fuzz harness with torch.save (run with a Python that has torch):
#   python3 scripts/fuzz/seeds/make-ckpt.py scripts/fuzz/seeds
import sys, collections, torch
out = sys.argv[1]
g = torch.Generator().manual_seed(0)
sd = collections.OrderedDict()
sd['model.a.weight'] = torch.randn(3, 4, generator=g)
sd['model.a.bias'] = torch.arange(3, dtype=torch.float32)
sd['model.t'] = torch.randn(4, 3, generator=g).t()  # non-contiguous view
sd['model.h'] = torch.randn(2, 2, generator=g).half()
sd['model.i'] = torch.arange(5, dtype=torch.int64)
sd['model.s'] = sd['model.a.weight'][1]  # shares a storage, offset 4
torch.save({'state_dict': sd, 'global_step': 7, 'epoch': 1}, f'{out}/lightning.ckpt')
torch.save(collections.OrderedDict(list(sd.items())[:3]), f'{out}/bare.pt')
torch.save({'state_dict': sd}, f'{out}/legacy.ckpt', _use_new_zipfile_serialization=False)
