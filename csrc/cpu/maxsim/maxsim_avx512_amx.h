// bf16 MaxSim on AMX tiles (maxsim_avx512_amx.cpp), used by scores() / topk() when it applies.
#pragma once

#include "maxsim.h"

namespace colkern::maxsim {

// The CPU has AMX-BF16 and the OS granted this process the tile state.
bool amx_bf16_usable();
// bf16 queries and documents, D % 32 == 0, active level AVX-512, AMX usable.
bool amx_bf16_applies(const Problem& p);
void amx_bf16_scores(const Problem& p, float* out, int num_threads);
void amx_bf16_topk(const Problem& p, int64_t k, float* out_scores, int64_t* out_indices, int num_threads);

}  // namespace colkern::maxsim
