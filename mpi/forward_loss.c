/* forward_loss.c: a training batch's forward pass and loss, the one piece of a step that
 * the loop (train.c), reproducible mode (repro.c, once per micro-batch) and the start-up
 * timing of gradient buckets (sync_setup.c, dry steps) share. It stands below all three,
 * so that calls between the trainer's files only go down: train.c calls train_setup.c,
 * sync_setup.c, repro.c, resume.c and report.c; sync_setup.c and repro.c call this file;
 * none calls back up into train.c. */
#include "trainer.h"

const float *mn_trainer_forward_loss(trainer *tr, mn_pass *p, const mn_batch *b, size_t first,
                                     int rows, mn_loss_stats *st) {
  mn_net *net = &tr->net;
  const bool labels = tr->train.info.has_labels;
  p->sample_ids = b->ids + first;
  const float *out = mn_net_forward(net, p, b->x + first * tr->train.row_len, rows);
  *st = (mn_loss_stats){.unit_scale = net->target_std};
  mn_loss_compute(net->loss, mn_net_final_act(net), out, labels ? b->y + first : NULL,
                  labels ? NULL : b->t + first * (size_t)tr->train.info.classes, rows, net->outputs,
                  1.0f / (float)(tr->local_step ? b->count : tr->s.batch), mn_net_output_grad(net),
                  st);
  return out;
}
